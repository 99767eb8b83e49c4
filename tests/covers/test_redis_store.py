"""The Redis store against a real `redis-server`: one cache shared by several servers."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from iiif_server.covers.redis_store import RedisStore, redis_key
from iiif_server.covers.service import CoverService
from iiif_server.handlers.covers import routes
from tests.covers.fake_provider import FakeProviders
from tests.live import free_port

pytestmark = pytest.mark.gen_test(timeout=20)

BOOK = "9780415480635"
TOKEN = "a-token-of-sixteen-or-more"


async def test_values_no_cover_and_expiry_live_in_redis(redis_url: str) -> None:
    store = RedisStore(redis_url, timeout=2.0)
    await store.start()
    try:
        await store.put_many({("gb", "1"): ("http://a/1", 60), ("ol", "1"): (None, 5)})
        assert store.peek([("gb", "1")]) == {}  # nothing kept in this process
        assert await store.get_many([("gb", "1"), ("ol", "1"), ("gb", "2")]) == {
            ("gb", "1"): "http://a/1",
            ("ol", "1"): None,
        }
    finally:
        await store.close()
    client = redis.Redis.from_url(redis_url)
    try:
        assert 59_000 < client.pttl(redis_key(("gb", "1"))) <= 60_000
        assert 4_000 < client.pttl(redis_key(("ol", "1"))) <= 5_000
    finally:
        client.close()


@asynccontextmanager
async def cover_server(fake: FakeProviders, redis_url: str) -> AsyncIterator[str]:
    """One server process's worth: its own service and application on its own port."""
    service = CoverService(
        fake.settings(store=redis_url, set_token=TOKEN), RedisStore(redis_url, timeout=2.0)
    )
    await service.start()
    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = HTTPServer(tornado.web.Application(routes(service)))
    server.add_sockets(sockets)
    try:
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    finally:
        server.stop()
        await server.close_all_connections()
        await service.close()


async def get(url: str, **kwargs: object) -> HTTPResponse:
    client = AsyncHTTPClient()
    return await client.fetch(url, raise_error=False, **kwargs)


async def test_two_servers_share_lookups_and_overrides(fake: FakeProviders, redis_url: str) -> None:
    fake.gb[BOOK] = "v1"
    async with cover_server(fake, redis_url) as first, cover_server(fake, redis_url) as second:
        one = await get(f"{first}/cover?id={BOOK}&provider=gb")
        two = await get(f"{second}/cover?id=0-415-48063-9&provider=gb")
        assert json.loads(one.body)[BOOK] == json.loads(two.body)["0-415-48063-9"]
        assert len(fake.asked("gb")) == 1  # the second server found it in Redis

        override = "https://covers.example.org/mine.jpg"
        set_response = await get(
            f"{first}/set?provider=gb&id={BOOK}&url={override}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert set_response.code == 200
        seen = await get(f"{second}/cover?id={BOOK}&provider=gb")
        assert json.loads(seen.body) == {BOOK: override}


async def test_redis_down_costs_the_cache_not_the_answer(fake: FakeProviders) -> None:
    fake.gb[BOOK] = "v1"
    down = f"redis://127.0.0.1:{free_port()}/0"
    service = CoverService(fake.settings(store=down), RedisStore(down, timeout=0.5))
    await service.start()
    try:
        answer = await service.covers([BOOK], ("gb",))
    finally:
        await service.close()
    assert list(answer) == [BOOK]
