"""The `web` source: template encoding, upstream failures and what each one answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.config import TypeSettings
from iiif_server.errors import (
    BadRequest,
    NotFound,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from iiif_server.sources.base import SourceFile
from iiif_server.sources.registry import SourceRegistry
from iiif_server.sources.web import WebLocator
from tests.sources.conftest import web_settings
from tests.sources.upstream import Reply, Upstream, jpeg, redirect, wait_for

pytestmark = pytest.mark.gen_test(timeout=30)
IMAGE = jpeg()


async def resolve(registry: SourceRegistry, identifier: str) -> SourceFile:
    return await registry.resolve(registry.parse(identifier))


async def failure(registry: SourceRegistry, identifier: str) -> ServerError:
    with pytest.raises(ServerError) as caught:
        await resolve(registry, identifier)
    return caught.value


async def test_downloads_once_and_serves_the_local_file(
    registry: SourceRegistry, upstream: Upstream, source_path: Path
) -> None:
    upstream.routes["/images/red.jpg"] = Reply(body=IMAGE)
    first = await resolve(registry, "museum:red.jpg")
    second = await resolve(registry, "museum:red.jpg")
    assert first == second
    assert first.path.read_bytes() == IMAGE
    assert source_path / "museum" in first.path.parents
    assert upstream.paths() == ["/images/red.jpg"]


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("../secret", "/images/..%2Fsecret"),
        ("a/../../admin", "/images/a%2F..%2F..%2Fadmin"),
        ("x?admin=1#frag", "/images/x%3Fadmin%3D1%23frag"),
        ("@evil.example:80", "/images/%40evil.example%3A80"),
        ("%2e%2e", "/images/%252e%252e"),
        ("caf\u00e9 b", "/images/caf%C3%A9%20b"),
    ],
)
async def test_names_cannot_leave_the_template(
    registry: SourceRegistry, upstream: Upstream, name: str, sent: str
) -> None:
    with pytest.raises(NotFound):
        await resolve(registry, f"museum:{name}")
    assert upstream.paths() == [sent]


@pytest.mark.parametrize("name", [".", ".."])
async def test_dot_segments_are_refused_before_any_request(
    registry: SourceRegistry, upstream: Upstream, name: str
) -> None:
    error = await failure(registry, f"museum:{name}")
    assert isinstance(error, BadRequest) and f"museum:{name}" in error.message
    assert upstream.requests == []


def test_a_name_cannot_add_to_the_template_query() -> None:
    locator = WebLocator("https://assets.example.org/get?id={name}&size=full")
    url = locator.url_for("1&size=huge&host=x")
    assert url == "https://assets.example.org/get?id=1%26size%3Dhuge%26host%3Dx&size=full"
    assert locator.trusts_host("http://assets.example.org:8443/other")
    assert not locator.trusts_host("https://assets.example.org.evil.net/get")
    assert not locator.trusts_host("https://evil.net/get?https://assets.example.org/")


@pytest.mark.parametrize(
    ("reply", "expected", "status"),
    [
        (Reply(404, b"gone", {"Content-Type": "text/plain"}), NotFound, 404),
        (Reply(410, b"", {}), NotFound, 404),
        (Reply(500, b"oops", {"Content-Type": "text/plain"}), UpstreamError, 502),
        (Reply(403, b"", {}), UpstreamError, 502),
        (Reply(body=b"<html>hi</html>", headers={"Content-Type": "text/html"}), UpstreamError, 502),
        (Reply(body=b"<html>not a jpeg</html>"), UpstreamError, 502),
        (Reply(body=IMAGE, headers={}), UpstreamError, 502),  # no content type at all
        (Reply(body=IMAGE[:500], declared_length=len(IMAGE)), UpstreamError, 502),  # truncated
        (Reply(body=b""), UpstreamError, 502),
        (redirect("ftp://127.0.0.1/x"), UpstreamError, 502),
        (Reply(302, b"", {}), UpstreamError, 502),  # a redirect to nowhere
    ],
)
async def test_upstream_failures_map_to_statuses(
    registry: SourceRegistry, upstream: Upstream, reply: Reply, expected: type, status: int
) -> None:
    upstream.routes["/images/x.jpg"] = reply
    error = await failure(registry, "museum:x.jpg")
    assert type(error) is expected and error.status == status
    assert "museum:x.jpg" in error.message
    # Nothing is kept of a failed download, not even its temp file.
    assert [p for p in (registry.store.root / "museum").rglob("*") if p.is_file()] == []


async def test_a_slow_upstream_is_a_504(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    registry = SourceRegistry(web_settings(tmp_path, source_path, upstream, http_timeout=0.3))
    upstream.routes["/images/slow.jpg"] = Reply(body=IMAGE, delay=10)
    upstream.routes["/images/drip.jpg"] = Reply(body=IMAGE * 20, drip=0.05)
    for name in ("slow.jpg", "drip.jpg"):
        error = await failure(registry, f"museum:{name}")
        assert isinstance(error, UpstreamTimeout) and error.status == 504


@pytest.mark.parametrize("send_length", [True, False])
async def test_an_oversized_body_is_cut_off(
    tmp_path: Path, source_path: Path, upstream: Upstream, send_length: bool
) -> None:
    registry = SourceRegistry(
        web_settings(tmp_path, source_path, upstream, max_source_bytes=100_000)
    )
    # 32 MB that would take a while to send: the download must stop long before.
    upstream.routes["/images/big.jpg"] = Reply(
        body=IMAGE[:1000] * 64, repeat_body=500, send_length=send_length
    )
    error = await failure(registry, "museum:big.jpg")
    assert isinstance(error, UpstreamError) and "larger than 100000 bytes" in error.message
    if not send_length:
        await wait_for(lambda: upstream.aborted == 1)


async def test_a_source_at_the_limit_is_accepted(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    registry = SourceRegistry(
        web_settings(tmp_path, source_path, upstream, max_source_bytes=len(IMAGE))
    )
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE, send_length=False)
    assert (await resolve(registry, "museum:a.jpg")).size == len(IMAGE)


async def test_redirects_are_followed_up_to_the_limit(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    registry = SourceRegistry(web_settings(tmp_path, source_path, upstream, max_redirects=2))
    upstream.routes["/images/two"] = redirect("/hop/1", 301)
    upstream.routes["/hop/1"] = redirect(upstream.url("/hop/final"), 307)
    upstream.routes["/hop/final"] = Reply(body=IMAGE)
    upstream.routes["/images/three"] = redirect("/images/two")
    assert (await resolve(registry, "museum:two")).size == len(IMAGE)
    error = await failure(registry, "museum:three")
    assert isinstance(error, UpstreamError) and "more than 2 redirects" in error.message


async def test_a_redirect_off_the_template_host_may_not_reach_internal_addresses(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    """The template's own host may be internal; `localhost` is another host, and internal."""
    upstream.routes["/images/direct.jpg"] = Reply(body=IMAGE)
    upstream.routes["/images/same-host.jpg"] = redirect(upstream.url("/elsewhere.jpg"))
    upstream.routes["/images/away.jpg"] = redirect(upstream.url("/elsewhere.jpg", "localhost"))
    upstream.routes["/elsewhere.jpg"] = Reply(body=IMAGE)
    guarded = SourceRegistry(
        web_settings(tmp_path, source_path, upstream, allow_private_addresses=False)
    )
    assert (await resolve(guarded, "museum:direct.jpg")).size == len(IMAGE)
    assert (await resolve(guarded, "museum:same-host.jpg")).size == len(IMAGE)
    error = await failure(guarded, "museum:away.jpg")
    assert type(error) is UpstreamError and "address is not allowed" in error.message
    assert upstream.paths().count("/elsewhere.jpg") == 1  # the refused hop never arrived
    # The same redirect, allowed: so it was the address that was refused, not the URL.
    open_registry = SourceRegistry(
        web_settings(tmp_path / "open", source_path, upstream, allow_private_addresses=True)
    )
    assert (await resolve(open_registry, "museum:away.jpg")).size == len(IMAGE)


async def test_a_refused_connection_is_a_502(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    closed = Upstream()
    await closed.start()
    await closed.close()  # nothing listens on its port any more
    settings = web_settings(
        tmp_path, source_path, upstream,
        types={"museum": TypeSettings(name="museum", source="web", url=closed.url("/{name}"))},
        default_type=None,
    )  # fmt: skip
    error = await failure(SourceRegistry(settings), "museum:a.jpg")
    assert type(error) is UpstreamError and error.status == 502


async def test_credentials_in_the_template_are_sent_but_never_shown(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    template = f"http://user:s3cret@127.0.0.1:{upstream.port}/images/{{name}}?key=t0ken"
    settings = web_settings(
        tmp_path, source_path, upstream,
        types={"museum": TypeSettings(name="museum", source="web", url=template)},
        default_type=None,
    )  # fmt: skip
    upstream.routes["/images/x.jpg?key=t0ken"] = Reply(500, b"", {})
    error = await failure(SourceRegistry(settings), "museum:x.jpg")
    assert upstream.requests[0].headers["authorization"].startswith("Basic ")
    assert "s3cret" not in error.message and "t0ken" not in error.message


async def test_upstream_404s_are_remembered_briefly_and_other_failures_not_at_all(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    registry = SourceRegistry(web_settings(tmp_path, source_path, upstream))
    upstream.routes["/images/broken.jpg"] = Reply(500, b"", {})
    for _ in range(2):
        await failure(registry, "museum:missing.jpg")
        await failure(registry, "museum:broken.jpg")
    assert upstream.paths().count("/images/missing.jpg") == 1
    assert upstream.paths().count("/images/broken.jpg") == 2
    # Once the upstream recovers, the next request succeeds.
    upstream.routes["/images/broken.jpg"] = Reply(body=IMAGE)
    assert (await resolve(registry, "museum:broken.jpg")).size == len(IMAGE)

    no_memory = SourceRegistry(
        web_settings(tmp_path / "b", source_path, upstream, negative_cache_ttl=0)
    )
    for _ in range(2):
        await failure(no_memory, "museum:missing.jpg")
    assert upstream.paths().count("/images/missing.jpg") == 3


async def test_an_image_over_the_pixel_limit_is_kept_for_the_service_to_refuse(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    """Like a disk source: the service's probe answers 500; it is not fetched each time."""
    registry = SourceRegistry(web_settings(tmp_path, source_path, upstream, max_source_pixels=100))
    upstream.routes["/images/big.jpg"] = Reply(body=IMAGE)
    first = await resolve(registry, "museum:big.jpg")
    assert first == await resolve(registry, "museum:big.jpg")
    assert len(upstream.requests) == 1
