"""The `trusted_web` source: base64 names, a regex that must match the whole URL, every hop."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from iiif_server.config import TypeSettings
from iiif_server.errors import BadRequest, NotFound, ServerError, UpstreamError
from iiif_server.sources.registry import SourceRegistry
from iiif_server.sources.trusted_web import TrustedWebLocator, decode_name, encode_url
from tests.sources.conftest import web_settings
from tests.sources.upstream import Reply, Upstream, jpeg, redirect

pytestmark = pytest.mark.gen_test(timeout=30)
IMAGE = jpeg(color=(30, 30, 200))


def identifier(url: str) -> str:
    return "partner:" + encode_url(url)


async def failure(registry: SourceRegistry, ident: str) -> ServerError:
    with pytest.raises(ServerError) as caught:
        await registry.resolve(registry.parse(ident))
    return caught.value


@pytest.mark.parametrize("url", ["http://a.example/x.jpg", "https://b.example/p?q=1&r=ü~", "h"])
def test_names_decode_with_or_without_padding(url: str) -> None:
    padded = base64.urlsafe_b64encode(url.encode()).decode()
    assert decode_name(padded) == url
    assert decode_name(padded.rstrip("=")) == url
    assert decode_name(encode_url(url)) == url


@pytest.mark.parametrize("name", ["", "a+b/", "aGVsbG8===", "a", "!!", "/w==", "gA"])
def test_names_that_are_not_base64url_of_text_are_bad_requests(name: str) -> None:
    with pytest.raises(BadRequest):
        decode_name(name)


@pytest.mark.parametrize(
    ("regex", "url", "allowed"),
    [
        (r"https://p\.example/iiif/.*\.jpg", "https://p.example/iiif/a.jpg", True),
        # The regex matches only a prefix of these URLs: refused.
        (r"https://p\.example/iiif/\w+", "https://p.example/iiif/a.jpg", False),
        (r"https://p\.example/iiif/\w+", "https://p.example/iiif/a@evil.example/x", False),
        (r"https://p\.example/", "https://p.example/../admin", False),
        # Anchors written into the regex change nothing, nor does an alternation.
        (r"^https://p\.example/a$", "https://p.example/a", True),
        (r"^https://p\.example/a$", "https://p.example/a\n", False),
        (r"https://p\.example/a|https://q\.example/b", "https://p.example/a.evil", False),
        (r"https://p\.example/a|https://q\.example/b", "https://q.example/b", True),
        # Whatever the regex says, only absolute http(s) URLs with a host.
        (r".*", "file:///etc/passwd", False),
        (r".*", "http:///nohost", False),
        (r".*", "http://p.example/a b", False),
        (r".*", "http://p.example:99999/", False),
    ],
)
def test_the_regex_must_match_the_whole_url(regex: str, url: str, allowed: bool) -> None:
    locator = TrustedWebLocator(regex)
    if allowed:
        assert locator.url_for(encode_url(url)) == url
    else:
        with pytest.raises(BadRequest):
            locator.url_for(encode_url(url))


async def test_fetches_the_decoded_url(registry: SourceRegistry, upstream: Upstream) -> None:
    path = "/images/blue.jpg?v=2"
    while len(upstream.url(path)) % 3 == 0:  # a length whose base64 needs padding
        path += "2"
    upstream.routes[path] = Reply(body=IMAGE)
    url = upstream.url(path)
    source = await registry.resolve(registry.parse(identifier(url)))
    assert source.path.read_bytes() == IMAGE
    # Padded and unpadded spellings are one URL, so one download.
    padded = base64.urlsafe_b64encode(url.encode()).decode()
    assert padded != encode_url(url)
    assert await registry.resolve(registry.parse("partner:" + padded)) == source
    assert upstream.paths() == [path]


async def test_a_url_outside_the_regex_is_a_400_without_a_request(
    registry: SourceRegistry, upstream: Upstream
) -> None:
    for url in (upstream.url("/secret/a.jpg"), upstream.url("/images/a.jpg", "localhost")):
        error = await failure(registry, identifier(url))
        assert isinstance(error, BadRequest) and error.status == 400
        assert url not in error.message
    assert upstream.requests == []


async def test_every_redirect_hop_must_match_the_regex(
    registry: SourceRegistry, upstream: Upstream
) -> None:
    upstream.routes["/images/in"] = redirect("/images/still-in")
    upstream.routes["/images/still-in"] = Reply(body=IMAGE)
    upstream.routes["/images/out"] = redirect("/private/x.jpg")
    upstream.routes["/private/x.jpg"] = Reply(body=IMAGE)
    source = await registry.resolve(registry.parse(identifier(upstream.url("/images/in"))))
    assert source.size == len(IMAGE)
    error = await failure(registry, identifier(upstream.url("/images/out")))
    assert type(error) is UpstreamError and "does not allow" in error.message
    assert "/private/x.jpg" not in upstream.paths()


async def test_internal_addresses_are_refused_unless_allowed(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    upstream.routes["/images/a.jpg"] = Reply(body=IMAGE)
    guarded = SourceRegistry(
        web_settings(tmp_path, source_path, upstream, allow_private_addresses=False)
    )
    error = await failure(guarded, identifier(upstream.url("/images/a.jpg")))
    assert type(error) is UpstreamError and error.status == 502
    assert "address is not allowed" in error.message
    assert upstream.requests == []  # refused before connecting


async def test_a_404_is_a_404(registry: SourceRegistry, upstream: Upstream) -> None:
    error = await failure(registry, identifier(upstream.url("/images/none.jpg")))
    assert isinstance(error, NotFound)


async def test_messages_never_show_credentials(
    tmp_path: Path, source_path: Path, upstream: Upstream
) -> None:
    settings = web_settings(
        tmp_path, source_path, upstream,
        types={"partner": TypeSettings(name="partner", source="trusted_web", regex=r".*")},
        default_type=None,
    )  # fmt: skip
    upstream.routes["/images/a.jpg"] = Reply(503, b"", {})
    url = f"http://bob:hunter2@127.0.0.1:{upstream.port}/images/a.jpg"
    error = await failure(SourceRegistry(settings), identifier(url))
    assert type(error) is UpstreamError and "hunter2" not in error.message
