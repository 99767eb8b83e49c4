"""Shared pools in one process: the supervisor's broker, fronts' RemotePools, socket pairs."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from iiif_server.errors import (
    NotFound,
    Overloaded,
    ServerError,
    TaskTimeout,
    Unavailable,
    WorkerFailed,
)
from iiif_server.pool_broker import PoolBroker
from iiif_server.pool_client import PoolLink, RemotePool
from iiif_server.workers import Job, WorkerPool
from tests import worker_tasks as tasks
from tests.test_workers import held_decode, run_async, until


@dataclass
class Shared:
    broker: PoolBroker
    local: WorkerPool  # the supervisor's pool
    fronts: list[RemotePool]  # the same pool, as each front sees it
    links: list[PoolLink]


@asynccontextmanager
async def shared(fronts: int = 1, size: int = 2, **options: float) -> AsyncIterator[Shared]:
    local = WorkerPool(
        "image",
        size,
        task_timeout=options.get("task_timeout", 5.0),
        max_queue=int(options.get("max_queue", 4)),
    )
    broker = PoolBroker({"image": local}, status_every=0.05)
    local.start()
    remotes, links = [], []
    for _ in range(fronts):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        broker.serve(ours)
        links.append(PoolLink(theirs))
        remote = RemotePool("image", size, links[-1])
        remote.start()
        remotes.append(remote)
    try:
        for remote in remotes:
            await remote.wait_ready()
        yield Shared(broker, local, remotes, links)
    finally:
        for remote in remotes:
            await remote.close(grace=1)
        await broker.close()
        await local.close(grace=1)


@run_async
async def test_results_and_big_answers_cross_while_requests_keep_coming() -> None:
    big = os.urandom(6 * 2**20)
    async with shared() as pools:
        [front] = pools.fronts
        answers = await asyncio.gather(
            *(front.submit(tasks.echo, big[i:] + big[:i]) for i in range(4)),
            *(front.submit(tasks.add, i, 1) for i in range(8)),
        )
    assert answers[:4] == [big[i:] + big[:i] for i in range(4)]
    assert answers[4:] == list(range(1, 9))


@run_async
async def test_worker_errors_reach_the_front_with_their_types() -> None:
    async with shared(size=1, task_timeout=0.5, max_queue=1) as pools:
        [front] = pools.fronts
        with pytest.raises(NotFound, match="no such image"):
            await front.submit(tasks.raise_not_found, "no such image")
        with pytest.raises(ServerError) as other:
            await front.submit(tasks.raise_value_error, "private detail")
        assert type(other.value) is ServerError and "private" not in str(other.value)
        with pytest.raises(WorkerFailed):
            await front.submit(tasks.exit_abruptly)
        with pytest.raises(TaskTimeout):
            await front.submit(tasks.sleep_then_pid, 3)
        await until(lambda: pools.local.status().live == 1)  # its replacement
        running = asyncio.ensure_future(front.submit(tasks.sleep_then_pid, 0.3))
        waiting = asyncio.ensure_future(front.submit(tasks.add, 1, 1))
        await until(lambda: pools.local.status().queued == 1)
        with pytest.raises(Overloaded):
            await front.submit(tasks.add, 2, 2)
        assert await waiting == 2
        await running


@run_async
async def test_optional_work_is_skipped_while_a_shared_worker_is_busy(tmp_path: Path) -> None:
    skipped, done = tmp_path / "skipped", tmp_path / "done"
    async with shared(fronts=2) as pools:
        first, second = pools.fronts
        busy = asyncio.ensure_future(first.submit(tasks.sleep_then_pid, 0.5))
        await until(lambda: pools.local.status().busy == 1)
        # The other front's task counts: the supervisor decides, not a stale flag.
        assert not await second.submit_if_idle(Job(tasks.touch, (str(skipped),)))
        await busy
        await until(lambda: pools.local.idle())
        jobs = [Job(tasks.touch, (str(done),), affinity="a"), Job(tasks.add, (1, 2), light=True)]
        assert await second.submit_if_idle(*jobs)
        await until(done.exists)
    assert not skipped.exists()


@run_async
async def test_a_job_on_hold_is_dropped_by_optional_work_from_another_front(
    tmp_path: Path,
) -> None:
    """Sessions starting at once on two fronts: the decode held for the first is not made."""
    held, other = tmp_path / "held", tmp_path / "other"
    async with shared(fronts=2) as pools:
        first, second = pools.fronts
        whole = Job(tasks.sleep_then_pid, (0.2,), "image")
        assert await first.submit_if_idle(whole, held_decode(held, hold=0.3))
        assert not await second.submit_if_idle(Job(tasks.touch, (str(other),), "b"))
        await asyncio.sleep(0.4)  # past the hold
        await until(pools.local.idle)
    assert not held.exists() and not other.exists()


@run_async
async def test_status_pids_and_broadcast_are_the_shared_pools() -> None:
    async with shared(fronts=2) as pools:
        for front in pools.fronts:
            assert front.status().live == 2 and not front.status().closing
            assert front.pids == pools.local.pids
            # The same pids as many times: each worker answered once (a None would differ).
            assert Counter(await front.broadcast(tasks.pid)) == Counter(pools.local.pids)
        busy = asyncio.ensure_future(pools.fronts[0].submit(tasks.sleep_then_pid, 0.5))
        await until(lambda: pools.fronts[1].status().busy == 1)  # a snapshot, soon current
        await busy


@run_async
async def test_a_lost_link_fails_requests_at_once_with_unavailable() -> None:
    async with shared() as pools:
        [front] = pools.fronts
        running = asyncio.ensure_future(front.submit(tasks.sleep_then_pid, 2))
        await until(lambda: pools.local.status().busy == 1)
        await pools.broker.close()  # the supervisor's side is gone
        began = time.monotonic()
        with pytest.raises(Unavailable):
            await running
        with pytest.raises(Unavailable):
            await front.submit(tasks.add, 1, 2)
        assert time.monotonic() - began < 1
        status = front.status()
        assert status.live == 0 and status.closing  # /health says 503


@run_async
async def test_a_front_that_goes_away_costs_only_its_own_tasks(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    async with shared(fronts=2, size=1) as pools:
        leaving, staying = pools.fronts
        running = asyncio.ensure_future(leaving.submit(tasks.sleep_then_pid, 0.3))
        queued = asyncio.ensure_future(leaving.submit(tasks.touch, str(marker)))
        after = asyncio.ensure_future(staying.submit(tasks.add, 2, 2))
        await until(lambda: pools.local.status().queued == 2)
        await leaving.close(grace=0)  # as if that front exited
        for gone in (running, queued):
            with pytest.raises(Unavailable):
                await gone
        assert await after == 4
        assert await staying.submit(tasks.add, 3, 3) == 6
    assert not marker.exists()  # dropped from the queue, never ran


@run_async
async def test_a_front_announces_a_viewers_image_to_the_other_fronts() -> None:
    async with shared(fronts=3) as pools:
        heard: list[list[str]] = [[], [], []]
        for link, notes in zip(pools.links, heard, strict=True):
            link.listen(notes.append)
        pools.links[0].announce("big.jpg")
        pools.links[0].announce("small.jpg")
        await until(lambda: heard[1] == heard[2] == ["big.jpg", "small.jpg"])
        assert heard[0] == []  # not told its own news


@run_async
async def test_a_cancelled_waiting_request_leaves_the_shared_queue(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    async with shared(size=1) as pools:
        [front] = pools.fronts
        running = asyncio.ensure_future(front.submit(tasks.sleep_then_pid, 0.3))
        waiting = asyncio.ensure_future(front.submit(tasks.touch, str(marker)))
        await until(lambda: pools.local.status().queued == 1)
        waiting.cancel()
        await until(lambda: pools.local.status().queued == 0)
        await running
        assert await front.submit(tasks.add, 1, 1) == 2  # after the slot it would have had
    assert not marker.exists()
