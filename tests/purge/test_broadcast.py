"""Purges between nodes through a real Redis channel."""

from __future__ import annotations

import asyncio

import pytest

from iiif_server.purge.broadcast import CHANNEL, RedisBroadcast
from iiif_server.purge.message import Purge
from iiif_server.shared.redis_link import RedisLink
from tests.covers.conftest import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

pytestmark = pytest.mark.gen_test(timeout=30)


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
