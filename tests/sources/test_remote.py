"""Downloads shared by concurrent requests, refreshed after `ttl`, reused after a restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from iiif_server.config import Settings, TypeSettings
from iiif_server.errors import NotFound, Overloaded, UpstreamError
from iiif_server.sources.base import SourceFile
from iiif_server.sources.registry import SourceRegistry
from tests.sources.conftest import web_settings
from tests.sources.upstream import Reply, Request, Upstream, jpeg, wait_for

pytestmark = pytest.mark.gen_test(timeout=30)
IMAGE = jpeg()
NEWER = jpeg((80, 60), (10, 180, 10))
TTL = 0.05


async def resolve(registry: SourceRegistry, identifier: str) -> SourceFile:
    return await registry.resolve(registry.parse(identifier))


def with_ttl(tmp_path: Path, source_path: Path, upstream: Upstream, **overrides: Any) -> Settings:
    museum = TypeSettings(name="museum", source="web", url=upstream.url("/images/{name}"), ttl=TTL)
    return web_settings(
        tmp_path, source_path, upstream, types={"museum": museum}, default_type=None, **overrides
    )


async def test_twenty_concurrent_requests_make_one_upstream_request(
    registry: SourceRegistry, upstream: Upstream
) -> None:
    gate = asyncio.Event()
    upstream.routes["/images/popular.jpg"] = Reply(body=IMAGE, gate=gate)
    tasks = [asyncio.ensure_future(resolve(registry, "museum:popular.jpg")) for _ in range(20)]
    await upstream.arrived.wait()  # every task has joined the download by now
    gate.set()
    results = await asyncio.gather(*tasks)
    assert len(set(results)) == 1
    assert upstream.paths() == ["/images/popular.jpg"]


async def test_a_caller_going_away_does_not_cancel_the_shared_download(
    registry: SourceRegistry, upstream: Upstream
) -> None:
    gate = asyncio.Event()
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE, gate=gate)
    first = asyncio.ensure_future(resolve(registry, "museum:a.jpg"))
    second = asyncio.ensure_future(resolve(registry, "museum:a.jpg"))
    await upstream.arrived.wait()
    first.cancel()
    gate.set()
    assert (await second).size == len(IMAGE)
    assert len(upstream.requests) == 1


async def test_downloads_beyond_the_limit_wait_and_the_wait_is_bounded(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    registry = SourceRegistry(
        web_settings(tmp_path, source_path, upstream, max_http_fetches=1, max_http_waiting=1)
    )
    gate = asyncio.Event()
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE, gate=gate)
    upstream.routes["/images/b.jpg"] = Reply(body=IMAGE)
    running = asyncio.ensure_future(resolve(registry, "museum:a.jpg"))
    await upstream.arrived.wait()
    waiting = asyncio.ensure_future(resolve(registry, "museum:b.jpg"))
    await wait_for(lambda: registry.fetcher.waiting == 1)
    with pytest.raises(Overloaded) as caught:
        await resolve(registry, "museum:c.jpg")
    assert caught.value.status == 503
    assert upstream.paths() == ["/images/a.jpg"]  # b waits for the slot
    gate.set()
    assert (await running).size == (await waiting).size == len(IMAGE)


async def test_expired_sources_are_revalidated_and_kept_when_unchanged(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    def conditional(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(body=IMAGE, headers={"Content-Type": "image/jpeg", "ETag": '"v1"'})

    upstream.routes["/images/a.jpg"] = conditional
    registry = SourceRegistry(with_ttl(tmp_path, source_path, upstream))
    first = await resolve(registry, "museum:a.jpg")
    await asyncio.sleep(TTL * 1.5)  # let it expire
    second = await resolve(registry, "museum:a.jpg")
    assert second == first  # same file, same identity: cached derivatives stay valid
    assert [r.headers.get("if-none-match") for r in upstream.requests] == [None, '"v1"']


async def test_a_changed_source_gets_a_new_identity_at_the_same_path(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    upstream.routes["/images/a.jpg"] = Reply(
        body=IMAGE, headers={"Content-Type": "image/jpeg", "Last-Modified": "Mon, 01 Jan 2024"}
    )
    registry = SourceRegistry(with_ttl(tmp_path, source_path, upstream))
    first = await resolve(registry, "museum:a.jpg")
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE)  # same bytes, sent again in full
    await asyncio.sleep(TTL * 1.5)
    second = await resolve(registry, "museum:a.jpg")
    assert upstream.requests[1].headers["if-modified-since"] == "Mon, 01 Jan 2024"
    assert second.path == first.path and second.identity != first.identity
    upstream.routes["/images/a.jpg"] = Reply(body=NEWER)
    await asyncio.sleep(TTL * 1.5)
    third = await resolve(registry, "museum:a.jpg")
    assert third.path.read_bytes() == NEWER and third.identity != second.identity


async def test_a_failed_refresh_serves_the_earlier_download_and_a_404_removes_it(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE)
    registry = SourceRegistry(with_ttl(tmp_path, source_path, upstream))
    first = await resolve(registry, "museum:a.jpg")
    upstream.routes["/images/a.jpg"] = Reply(500, b"", {})
    await asyncio.sleep(TTL * 1.5)
    assert await resolve(registry, "museum:a.jpg") == first
    upstream.routes["/images/a.jpg"] = Reply(404, b"", {})
    with pytest.raises(NotFound):
        await resolve(registry, "museum:a.jpg")
    assert not first.path.exists()
    assert len(upstream.requests) == 3


async def test_a_restart_reuses_what_was_downloaded(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    settings = web_settings(tmp_path, source_path, upstream)
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE, headers={"Content-Type": "image/jpeg"})
    before = await resolve(SourceRegistry(settings), "museum:a.jpg")
    leftover = before.path.with_name(".tmp-0123456789abcdef")
    leftover.write_bytes(b"half a download")
    os.utime(leftover, (1_000_000, 1_000_000))  # from a run that died long ago
    upstream.routes.clear()  # the upstream forgets everything: only the local copy can answer
    after = await resolve(SourceRegistry(settings), "museum:a.jpg")
    assert after == before
    assert not leftover.exists()
    assert upstream.paths() == ["/images/a.jpg"]


async def test_sources_are_evicted_least_recently_used_first(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    images = {name: jpeg((40 + i, 40), (i * 50, 0, 0)) for i, name in enumerate("abcd")}
    for name, data in images.items():
        upstream.routes[f"/images/{name}"] = Reply(body=data)
    budget = len(images["a"]) + len(images["c"]) + len(images["d"])
    registry = SourceRegistry(
        web_settings(tmp_path, source_path, upstream, source_cache_max_bytes=budget)
    )
    a = await resolve(registry, "museum:a")
    await resolve(registry, "museum:b")
    await resolve(registry, "museum:c")
    await resolve(registry, "museum:a")  # a is now more recent than b
    d = await resolve(registry, "museum:d")
    assert registry.store.total_bytes <= budget
    assert a.path.exists() and d.path.exists()
    assert upstream.paths() == ["/images/a", "/images/b", "/images/c", "/images/d"]
    await resolve(registry, "museum:b")  # evicted: fetched again
    assert upstream.paths()[-1] == "/images/b"
    files = [p for p in (source_path / "museum").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files if p.suffix != ".json") <= budget


async def test_a_file_removed_underneath_is_downloaded_again(
    registry: SourceRegistry, upstream: Upstream
) -> None:
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE)
    first = await resolve(registry, "museum:a.jpg")
    first.path.unlink()
    second = await resolve(registry, "museum:a.jpg")
    assert second.path.read_bytes() == IMAGE
    assert len(upstream.requests) == 2


async def test_a_failure_is_shared_by_the_waiters_but_not_kept(
    registry: SourceRegistry, upstream: Upstream
) -> None:
    gate = asyncio.Event()
    upstream.routes["/images/a.jpg"] = Reply(502, b"", {}, gate=gate)
    tasks = [asyncio.ensure_future(resolve(registry, "museum:a.jpg")) for _ in range(3)]
    await upstream.arrived.wait()
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(type(r) is UpstreamError for r in results)
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE)
    assert (await resolve(registry, "museum:a.jpg")).size == len(IMAGE)
    assert len(upstream.requests) == 2
