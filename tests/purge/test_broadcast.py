"""Purges between nodes through a real Redis channel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from iiif_server.purge.broadcast import CHANNEL, STREAM, Apply, RedisBroadcast
from iiif_server.purge.message import Purge
from iiif_server.shared.redis_link import RedisLink
from tests.covers.conftest import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

pytestmark = pytest.mark.gen_test(timeout=30)


Applied = dict[str, list[tuple[list[Purge], bool]]]


def recorder(applied: Applied, name: str) -> Apply:
    """An `Apply` that notes what it is given under `name`."""
    applied[name] = []

    async def apply(purges: list[Purge], files: bool) -> None:
        applied[name].append((purges, files))

    return apply


async def listening(link: RedisLink, count: int) -> None:
    """Until `count` processes are subscribed to the channel."""
    for _ in range(300):
        [(_, now)] = await link.client.pubsub_numsub(CHANNEL)
        if now == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not {count} listening")


async def until(check: Callable[[], bool]) -> None:
    for _ in range(300):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not in time")


async def test_every_process_of_the_other_nodes_applies_it_one_deletes_files(
    redis_url: str,
) -> None:
    applied: dict[str, list[tuple[list[Purge], bool]]] = {}
    processes = [("a", "a1"), ("b", "b1"), ("b", "b2")]
    broadcasts = []
    links = []
    for node, process in processes:
        links.append(RedisLink(redis_url))
        broadcast = RedisBroadcast(links[-1], node)
        applied[process] = []

        async def apply(purges: list[Purge], files: bool, process: str = process) -> None:
            applied[process].append((purges, files))

        broadcast.start(apply)
        broadcasts.append(broadcast)
    try:
        for _ in range(200):  # until all three listen
            [(_, listening)] = await links[0].client.pubsub_numsub(CHANNEL)
            if listening == 3:
                break
            await asyncio.sleep(0.02)
        assert await broadcasts[0].publish([Purge("sample", "x.jpg")]) == 3
        for _ in range(100):
            if applied["b1"] and applied["b2"]:
                break
            await asyncio.sleep(0.02)
        assert applied["a1"] == []  # its own node: the journal carries it there
        received = applied["b1"] + applied["b2"]
        assert [purges for purges, _ in received] == [[Purge("sample", "x.jpg")]] * 2
        assert sorted(files for _, files in received) == [False, True]
    finally:
        for broadcast in broadcasts:
            await broadcast.stop()
        for link in links:
            await link.close()


async def test_a_process_cut_off_from_redis_applies_what_it_missed_once_back(
    redis_url: str,
) -> None:
    """The channel reaches only who listens: a purge published while a node's connection
    was down reaches it from the stream when it subscribes again, once; a process that
    starts later does not replay the purges before it."""
    links = [RedisLink(redis_url) for _ in range(3)]
    publisher, follower, late = (
        RedisBroadcast(link, node) for link, node in zip(links, "abc", strict=True)
    )
    applied: Applied = {}
    publisher.start(recorder(applied, "a"))
    follower.start(recorder(applied, "b"))
    try:
        await listening(links[0], 2)
        # The network cut: Redis drops every subscriber's connection.
        await links[0].client.client_kill_filter(_type="pubsub")
        assert await publisher.publish([Purge("sample", "gone.jpg")]) == 0  # nobody heard it
        await until(lambda: bool(applied["b"]))
        assert applied["b"] == [([Purge("sample", "gone.jpg")], True)]
        assert follower.caught_up == 1
        await listening(links[0], 2)
        assert await publisher.publish([Purge("sample", "next.jpg")]) == 2
        await until(lambda: len(applied["b"]) == 2)
        assert [purges for purges, _ in applied["b"]] == [
            [Purge("sample", "gone.jpg")],
            [Purge("sample", "next.jpg")],
        ]
        late.start(recorder(applied, "c"))
        await listening(links[0], 3)
        await asyncio.sleep(0.2)
        assert applied["c"] == []  # nothing from before it started
        assert follower.caught_up == 1  # the second one came on the channel, applied once
    finally:
        for broadcast in (publisher, follower, late):
            await broadcast.stop()
        for link in links:
            await link.close()


async def test_a_node_that_was_down_catches_up_from_the_position_it_noted(
    redis_url: str, tmp_path: Path
) -> None:
    """The purges published while every process of node b was down reach its next
    process (which then deletes b's files): b's processes note how far they read."""
    position = tmp_path / "purge" / "broadcast-position"
    links = [RedisLink(redis_url) for _ in range(3)]
    publisher = RedisBroadcast(links[0], "a")
    before = RedisBroadcast(links[1], "b", position)
    after = RedisBroadcast(links[2], "b", position)
    applied: Applied = {}
    publisher.start(recorder(applied, "a"))
    before.start(recorder(applied, "before"))
    try:
        await listening(links[0], 2)
        assert await publisher.publish([Purge("sample", "seen.jpg")]) == 2
        await until(lambda: bool(applied["before"]))
        await before.stop()  # node b is down
        await listening(links[0], 1)
        assert await publisher.publish([Purge("sample", "meanwhile.jpg")]) == 1
        after.start(recorder(applied, "after"))  # node b is back: a new process
        await until(lambda: bool(applied["after"]))
        await asyncio.sleep(0.2)
        assert applied["after"] == [([Purge("sample", "meanwhile.jpg")], True)]
        assert after.caught_up == 1
        newest = await links[0].client.xrevrange(STREAM, count=1)
        assert newest is not None and isinstance(newest[0][0], bytes)
        assert position.read_text() == newest[0][0].decode()  # noted for the next one
    finally:
        for broadcast in (publisher, before, after):
            await broadcast.stop()
        for link in links:
            await link.close()
