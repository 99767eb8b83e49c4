"""WorkerPool: results, errors, affinity, time limits, crash recovery, shutdown."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import multiprocessing.resource_tracker
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from iiif_server.errors import (
    NotFound,
    Overloaded,
    ServerError,
    TaskTimeout,
    Unavailable,
    WorkerFailed,
)
from iiif_server.workers import Job, WorkerPool
from tests import worker_tasks as tasks


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (keeps its pytest parameters)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def make_pool(size: int = 2, **options: Any) -> WorkerPool:
    options.setdefault("task_timeout", 2.0)
    options.setdefault("max_queue", 4)
    return WorkerPool("test", size, **options)


def key_for(index: int, size: int) -> str:
    """Distinct affinity keys; a pool gives each new key to its least busy worker."""
    return f"image-{index}-of-{size}"


async def started(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Schedule a submit and let it reach its queue before going on."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)  # one loop turn: the submit runs up to its first await
    return task


async def exited(pid: int, timeout: float = 2.0) -> None:
    """Wait for a process to be gone (a pidfd is readable once it has exited)."""
    fd = os.pidfd_open(pid)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, on_exit)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def registered_readers() -> int:
    return len(asyncio.get_running_loop()._selector.get_map())  # type: ignore[attr-defined]


@run_async
async def test_results_come_back_from_many_concurrent_tasks() -> None:
    async with make_pool(max_queue=10) as pool:
        results = await asyncio.gather(*(pool.submit(tasks.add, n, 1) for n in range(12)))
    assert results == [n + 1 for n in range(12)]


@run_async
async def test_server_errors_keep_their_type_and_message() -> None:
    async with make_pool(size=1) as pool:
        with pytest.raises(NotFound) as raised:
            await pool.submit(tasks.raise_not_found, "no image called cat.jpg")
    assert type(raised.value) is NotFound
    assert raised.value.message == "no image called cat.jpg"


@run_async
async def test_other_errors_become_a_short_server_error() -> None:
    async with make_pool(size=1) as pool:
        with pytest.raises(ServerError) as raised:
            await pool.submit(tasks.raise_value_error, "secret path /srv/images/x")
        # The worker survives an ordinary exception.
        assert await pool.submit(tasks.add, 1, 1) == 2
    assert type(raised.value) is ServerError
    assert "secret" not in str(raised.value)


@run_async
async def test_answers_that_cannot_cross_the_pipe_fail_only_their_task() -> None:
    async with make_pool(size=1) as pool:
        worker = await pool.submit(tasks.pid)
        with pytest.raises(ServerError):
            await pool.submit(tasks.unpicklable_result)
        with pytest.raises(ServerError) as raised:
            await pool.submit(tasks.raise_unrebuildable_error)
        assert type(raised.value) is ServerError
        with pytest.raises(ServerError):
            await pool.submit(tasks.add, threading.Lock(), 1)  # argument cannot be sent
        assert await pool.submit(tasks.pid) == worker


@run_async
async def test_affinity_sends_one_key_to_one_worker() -> None:
    async with make_pool(size=3, max_queue=20) as pool:
        same_key = await asyncio.gather(
            *(pool.submit(tasks.pid, affinity="book/page-1.jpg") for _ in range(15))
        )
        many_keys = await asyncio.gather(
            *(pool.submit(tasks.pid, affinity=f"image-{n}") for n in range(15))
        )
    assert len(set(same_key)) == 1
    assert len(set(many_keys)) > 1


@run_async
async def test_without_affinity_the_least_busy_worker_is_chosen() -> None:
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        slow = await started(pool.submit(tasks.sleep_then_pid, 0.3))
        quick = await pool.submit(tasks.pid)
        assert quick != await slow


@run_async
async def test_task_past_its_limit_times_out_and_the_queue_moves_to_a_new_worker() -> None:
    async with make_pool(size=1, task_timeout=0.3) as pool:
        old_pid = await pool.submit(tasks.pid)
        began = time.monotonic()
        stuck = await started(pool.submit(tasks.sleep_then_pid, 30))
        behind = await started(pool.submit(tasks.pid))
        with pytest.raises(TaskTimeout):
            await stuck
        assert time.monotonic() - began < 1.0
        new_pid = await behind
        assert new_pid != old_pid
        assert pool.pids == [new_pid]


@pytest.mark.parametrize("death", ["os_exit", "segfault", "external_sigkill"])
@run_async
async def test_worker_death_fails_only_its_running_task(death: str) -> None:
    async with make_pool(size=2) as pool:
        doomed_key, other_key = key_for(0, 2), key_for(1, 2)
        doomed_pid = await pool.submit(tasks.pid, affinity=doomed_key)
        other_pid = await pool.submit(tasks.pid, affinity=other_key)

        fatal: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
            "os_exit": (tasks.exit_abruptly, ()),
            "segfault": (tasks.segfault, ()),
            "external_sigkill": (tasks.sleep_then_pid, (30,)),
        }
        fn, args = fatal[death]
        dying = await started(pool.submit(fn, *args, affinity=doomed_key))
        behind = await started(pool.submit(tasks.pid, affinity=doomed_key))
        elsewhere = await started(pool.submit(tasks.sleep_then_pid, 0.3, affinity=other_key))
        if death == "external_sigkill":
            assert pool.status().busy == 2
            os.kill(doomed_pid, signal.SIGKILL)

        with pytest.raises(WorkerFailed):
            await dying
        replacement_pid = await behind
        assert replacement_pid != doomed_pid
        assert await elsewhere == other_pid
        assert sorted(pool.pids) == sorted([replacement_pid, other_pid])


@run_async
async def test_idle_worker_that_dies_is_replaced() -> None:
    async with make_pool(size=1) as pool:
        old_pid = await pool.submit(tasks.pid)
        os.kill(old_pid, signal.SIGKILL)
        await exited(old_pid)
        new_pid = await pool.submit(tasks.pid)
        assert new_pid != old_pid
        assert pool.status().restarts == 1


@run_async
async def test_initializer_runs_in_every_worker_including_replacements() -> None:
    async with make_pool(size=1, initializer=tasks.configure, initargs=("ready",)) as pool:
        assert await pool.submit(tasks.configured) == "ready"
        with pytest.raises(WorkerFailed):
            await pool.submit(tasks.exit_abruptly)
        assert await pool.submit(tasks.configured) == "ready"


@run_async
async def test_worker_that_cannot_start_fails_its_queue_and_backs_off() -> None:
    async with make_pool(size=1, initializer=tasks.fail_to_start) as pool:
        with pytest.raises(WorkerFailed):
            await pool.submit(tasks.pid)
        with pytest.raises(WorkerFailed):
            await pool.wait_ready()
        # A hot respawn loop would start a new worker every ~0.1 s; backoff doubles the wait.
        await asyncio.sleep(1.0)
        assert pool.status().restarts <= 4


@run_async
async def test_full_queue_is_refused_at_once() -> None:
    async with make_pool(size=2, max_queue=1) as pool:
        await pool.wait_ready()
        key = key_for(0, 2)
        running = await started(pool.submit(tasks.sleep_then_pid, 0.3, affinity=key))
        waiting = await started(pool.submit(tasks.add, 1, 2, affinity=key))
        with pytest.raises(Overloaded):
            await pool.submit(tasks.add, 3, 4, affinity=key)  # its worker is full, the other idle

        elsewhere = await started(pool.submit(tasks.sleep_then_pid, 0.3))
        queued_elsewhere = await started(pool.submit(tasks.add, 5, 6))
        began = time.monotonic()
        with pytest.raises(Overloaded):
            await pool.submit(tasks.add, 7, 8)
        assert time.monotonic() - began < 0.05

        assert pool.status().queued == 2
        assert await running != await elsewhere
        assert [await waiting, await queued_elsewhere] == [3, 11]


@run_async
async def test_cancelled_waiting_task_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    async with make_pool(size=1) as pool:
        await pool.wait_ready()
        running = await started(pool.submit(tasks.sleep_then_pid, 0.2))
        cancelled = await started(pool.submit(tasks.touch, str(marker)))
        after = await started(pool.submit(tasks.add, 2, 2))
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert pool.status().queued == 1
        await running
        assert await after == 4
    assert not marker.exists()


@run_async
async def test_cancelled_running_task_leaves_the_pool_working() -> None:
    async with make_pool(size=1) as pool:
        await pool.wait_ready()
        running = await started(pool.submit(tasks.sleep_then_pid, 0.2))
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        worker = pool.pids[0]
        assert await pool.submit(tasks.pid) == worker  # ran after the dropped one, same worker


@run_async
async def test_close_lets_queued_work_finish_and_leaves_nothing_behind() -> None:
    multiprocessing.resource_tracker.ensure_running()  # spawn's helper, shared, not ours
    fds, readers = open_fds(), registered_readers()
    pool = make_pool(size=1)
    pool.start()
    pids = pool.pids
    running = await started(pool.submit(tasks.sleep_then_pid, 0.2))
    queued = [await started(pool.submit(tasks.add, n, n)) for n in range(3)]
    closing = await started(pool.close(grace=5))
    with pytest.raises(Unavailable):
        await pool.submit(tasks.pid)

    assert await running == pids[0]
    assert [await task for task in queued] == [0, 2, 4]
    await closing
    await pool.close()  # a second close is harmless
    assert multiprocessing.active_children() == []
    assert not Path(f"/proc/{pids[0]}").exists()  # reaped, not a zombie
    assert open_fds() == fds
    assert registered_readers() == readers


@run_async
async def test_close_fails_work_left_after_the_grace_period() -> None:
    pool = make_pool(size=2)
    pool.start()
    await pool.wait_ready()
    pids = pool.pids
    key = key_for(0, 2)
    stuck = await started(pool.submit(tasks.sleep_then_pid, 30, affinity=key))
    queued = await started(pool.submit(tasks.pid, affinity=key))
    began = time.monotonic()
    await pool.close(grace=0.2)
    assert time.monotonic() - began < 1.0
    for task in (stuck, queued):
        with pytest.raises(Unavailable):
            await task
    assert multiprocessing.active_children() == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


@run_async
async def test_new_keys_are_spread_over_workers_and_stay_there() -> None:
    async with make_pool(size=2) as pool:
        keys = [f"gallery-{n}" for n in range(4)]
        first = await asyncio.gather(*(pool.submit(tasks.pid, affinity=k) for k in keys))
        assert sorted(first.count(pid) for pid in set(first)) == [2, 2]
        again = await asyncio.gather(*(pool.submit(tasks.pid, affinity=k) for k in keys))
        assert again == first


@run_async
async def test_idle_work_runs_between_tasks_once_each_time() -> None:
    async with make_pool(size=1, initializer=tasks.register_idle_work) as pool:
        await pool.wait_ready()
        assert await pool.submit(tasks.idle_runs) == 0  # nothing before the first task
        await asyncio.sleep(0.2)
        assert await pool.submit(tasks.idle_runs) == 1  # once after it, not twice


@run_async
async def test_broadcast_runs_once_in_every_worker_after_its_queue() -> None:
    async with make_pool(3) as pool:
        await pool.wait_ready()
        busy = await started(pool.submit(tasks.sleep_then_pid, 0.3, affinity="busy"))

        answers = await pool.broadcast(tasks.pid)

        assert sorted(answers) == sorted(pool.pids)  # type: ignore[type-var]
        assert busy.done()  # queued behind the task already waiting for that worker


@run_async
async def test_broadcast_answers_none_for_a_worker_that_dies() -> None:
    async with make_pool(2) as pool:
        await pool.wait_ready()

        answers = await pool.broadcast(tasks.die_in, pool.pids[0])

        assert answers.count(None) == 1
        assert len(answers) == 2


@run_async
async def test_new_keys_go_by_the_keys_in_use_and_a_light_key_does_not_count() -> None:
    """Two sessions started while a short, light task runs go to different workers.

    By the load of the moment alone, both would go to the worker without it.
    """
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        light = await started(pool.submit(tasks.sleep_then_pid, 0.3, affinity="coarse", light=True))
        first = await pool.submit(tasks.pid, affinity="session-1")
        second = await pool.submit(tasks.pid, affinity="session-2")
        assert first != second
        assert second == await light  # behind the light task, with no session of its own


@run_async
async def test_a_light_key_goes_to_the_worker_with_nothing_to_do() -> None:
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        busy = await started(pool.submit(tasks.sleep_then_pid, 0.3, affinity="session-1"))
        light = await pool.submit(tasks.pid, affinity="coarse", light=True)
        assert light != await busy


@run_async
async def test_optional_jobs_taken_are_queued_before_tasks_submitted_after(tmp_path: Path) -> None:
    """A tile asked for right after a decode ahead was taken waits behind it, on its worker.

    (With the pools in another process, the tile's request may be read before the
    jobs are queued.)
    """
    first, second = tmp_path / "first", tmp_path / "second"
    async with make_pool(size=1) as pool:
        await pool.wait_ready()
        taken = asyncio.ensure_future(pool.submit_if_idle(Job(tasks.touch, (str(first),), "k")))
        later = asyncio.ensure_future(pool.submit(tasks.touch, str(second), affinity="k"))
        assert await taken
        await later
    assert first.stat().st_mtime_ns <= second.stat().st_mtime_ns


@run_async
async def test_a_preferred_key_is_used_once_a_task_of_it_was_queued() -> None:
    """A coarse tile goes to the worker that decodes the coarse levels ahead, if one does."""
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        own = await pool.submit(tasks.pid, affinity="image")
        # Nothing queued under the preferred key: the task's own key decides.
        assert await pool.submit(tasks.pid, affinity="image", prefer="image coarse") == own
        busy = await started(pool.submit(tasks.sleep_then_pid, 0.2, affinity="image"))
        ahead = await pool.submit(tasks.pid, affinity="image coarse", light=True)
        assert ahead != own
        assert await pool.submit(tasks.pid, affinity="image", prefer="image coarse") == ahead
        assert await busy == own


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def held_decode(mark: Path, hold: float = 0.05) -> Job:
    """The coarse decode ahead of a session: optional, on hold, light."""
    return Job(tasks.write_pid, (str(mark),), "image coarse", light=True, hold=hold)


@run_async
async def test_an_optional_job_on_hold_is_queued_when_its_hold_is_over(tmp_path: Path) -> None:
    mark = tmp_path / "coarse"
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        assert await pool.submit_if_idle(held_decode(mark, hold=0.2))
        assert not pool.idle()  # work is about to come
        await asyncio.sleep(0.05)
        assert not mark.exists()
        await until(mark.exists)
        await until(pool.idle)


@run_async
async def test_more_optional_work_drops_a_job_on_hold(tmp_path: Path) -> None:
    """Several sessions starting at once: the decode that would speed up one is not made."""
    mark = tmp_path / "coarse"
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        whole = Job(tasks.sleep_then_pid, (0.2,), "image")
        assert await pool.submit_if_idle(whole, held_decode(mark))
        assert not await pool.submit_if_idle(Job(tasks.pid, (), "another image"))
        await asyncio.sleep(0.1)  # past the hold
        await until(pool.idle)
        assert not mark.exists()


@run_async
async def test_tasks_that_prefer_a_job_on_hold_follow_it_to_its_worker(tmp_path: Path) -> None:
    mark = tmp_path / "coarse"
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        whole = Job(tasks.sleep_then_pid, (0.3,), "image")
        assert await pool.submit_if_idle(whole, held_decode(mark))
        tile = await pool.submit(tasks.pid, affinity="image", prefer="image coarse")
        assert mark.read_text() == str(tile)  # after the held job, in its worker
        assert tile != await pool.submit(tasks.pid, affinity="image")


@run_async
async def test_tasks_that_waited_for_a_dropped_job_go_by_their_own_key(tmp_path: Path) -> None:
    mark = tmp_path / "coarse"
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        whole = Job(tasks.sleep_then_pid, (0.2,), "image")
        assert await pool.submit_if_idle(whole, held_decode(mark, hold=1.0))
        tile = await started(pool.submit(tasks.pid, affinity="image", prefer="image coarse"))
        assert pool.status().queued == 1
        assert not await pool.submit_if_idle(Job(tasks.pid, (), "another image"))
        assert await tile == await pool.submit(tasks.pid, affinity="image")
        assert not mark.exists()


@run_async
async def test_a_task_cancelled_while_it_waits_for_a_job_on_hold_never_runs(
    tmp_path: Path,
) -> None:
    mark, cancelled = tmp_path / "coarse", tmp_path / "cancelled"
    async with make_pool(size=2) as pool:
        await pool.wait_ready()
        assert await pool.submit_if_idle(held_decode(mark))
        tile = await started(
            pool.submit(tasks.touch, str(cancelled), affinity="image", prefer="image coarse")
        )
        tile.cancel()
        await until(mark.exists)
        await until(pool.idle)
        assert not cancelled.exists()


@run_async
async def test_close_serves_the_tasks_waiting_for_a_job_on_hold(tmp_path: Path) -> None:
    pool = make_pool(size=2)
    pool.start()
    await pool.wait_ready()
    assert await pool.submit_if_idle(held_decode(tmp_path / "coarse", hold=5.0))
    tile = await started(pool.submit(tasks.pid, affinity="image", prefer="image coarse"))
    await pool.close()
    assert await tile in range(1, 2**22)
