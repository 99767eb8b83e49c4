"""`/cover` as Koha calls it (JSON, JSONP through jQuery, errors) and `/set` with its token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.ioloop import IOLoop

from iiif_server.covers.service import CoverService
from iiif_server.covers.store import MemoryStore
from iiif_server.handlers.base import NotFoundHandler
from iiif_server.handlers.covers import routes
from tests.covers.fake_provider import FakeProviders

pytestmark = pytest.mark.gen_test(timeout=20)

BOOK = "9780415480635"
OTHER = "9782266111560"
THIRD = "9780306406157"
TOKEN = "correct-horse-battery-staple"


@pytest.fixture
def fake(io_loop: IOLoop) -> Iterator[FakeProviders]:
    providers = FakeProviders()
    io_loop.run_sync(providers.start)
    providers.gb.update({BOOK: "v1", OTHER: "v2"})
    providers.ol.update({BOOK: 11, THIRD: 33})
    yield providers
    io_loop.run_sync(providers.close)


@pytest.fixture
def cover_overrides() -> dict[str, Any]:
    return {"set_token": TOKEN}


@pytest.fixture
def service(
    io_loop: IOLoop, fake: FakeProviders, cover_overrides: dict[str, Any]
) -> Iterator[CoverService]:
    running = CoverService(fake.settings(max_ids=5, **cover_overrides), MemoryStore(1000))
    io_loop.run_sync(running.start)
    yield running
    io_loop.run_sync(running.close)


@pytest.fixture
def app(service: CoverService) -> tornado.web.Application:
    return tornado.web.Application(routes(service), default_handler_class=NotFoundHandler)


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    return await client.fetch(url, raise_error=False, **kwargs)


async def test_koha_request_gets_the_flat_map(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    # Koha: CoceHost + '/cover?id=' + ids + '&provider=' + providers
    response = await get(
        http_client, f"{base_url}/cover?id={BOOK},{OTHER},{THIRD},123&provider=ol,gb"
    )
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(response.body) == {
        BOOK: f"{fake.url}/ol/b/id/11-M.jpg",
        OTHER: f"{fake.url}/gb/content?id=v2&printsec=frontcover&img=1&zoom=1&source=gbs_api",
        THIRD: f"{fake.url}/ol/b/id/33-M.jpg",
    }


async def test_configured_providers_when_none_asked(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    response = await get(http_client, f"{base_url}/cover?id={BOOK}")
    assert json.loads(response.body) == {
        BOOK: f"{fake.url}/gb/content?id=v1&printsec=frontcover&img=1&zoom=1&source=gbs_api"
    }


@pytest.mark.parametrize("flag", ["&all", "&all=", "&all=1"])
async def test_all_gives_every_provider(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders, flag: str
) -> None:
    response = await get(http_client, f"{base_url}/cover?id={BOOK},{THIRD}&provider=gb,ol{flag}")
    assert json.loads(response.body) == {
        BOOK: {
            "gb": f"{fake.url}/gb/content?id=v1&printsec=frontcover&img=1&zoom=1&source=gbs_api",
            "ol": f"{fake.url}/ol/b/id/11-M.jpg",
        },
        THIRD: {"ol": f"{fake.url}/ol/b/id/33-M.jpg"},
    }


async def test_jsonp_as_jquery_sends_it(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    url = f"{base_url}/cover?id={THIRD}&provider=ol&callback=jQuery36005_1700000000&_=1700000000123"
    response = await get(http_client, url)
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.body.decode()
    assert body == f'jQuery36005_1700000000({{"{THIRD}":"{fake.url}/ol/b/id/33-M.jpg"}})'
    dotted = await get(http_client, f"{base_url}/cover?id={THIRD}&callback=app.covers.$show")
    assert dotted.body.decode().startswith("app.covers.$show({")


@pytest.mark.parametrize(
    "callback",
    ["alert(1)//", "a;b", "<script>", "a b", "1abc", "a..b", ".a", "a.", "a-b", "x" * 200,
     "caf\u00e9", "a\nb", ""],
)  # fmt: skip
async def test_hostile_callback_names_are_refused(
    http_client: AsyncHTTPClient, base_url: str, callback: str
) -> None:
    response = await get(http_client, f"{base_url}/cover?id={BOOK}&callback={quote(callback)}")
    assert response.code == 400
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "error" in json.loads(response.body)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "id is missing"),
        ("id=", "id is missing"),
        ("id=,,", "id is missing"),
        (f"id={BOOK}&provider=gb,bn", "unknown provider 'bn'"),
        (f"id={BOOK}&provider=aws", "unknown provider 'aws'"),  # known, not enabled
        ("id=1,2,3,4,5,6", "too many ids"),
    ],
)
async def test_bad_requests_are_400_with_a_json_error(
    http_client: AsyncHTTPClient, base_url: str, query: str, says: str
) -> None:
    response = await get(http_client, f"{base_url}/cover?{query}")
    assert response.code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert says in json.loads(response.body)["error"]


async def test_set_needs_the_bearer_token(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    mine = "https://covers.example.org/b/9780415480635.jpg"
    url = f"{base_url}/set?provider=gb&id=0-415-48063-9&url={quote(mine)}"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
        refused = await get(http_client, url, headers=headers)
        assert refused.code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    accepted = await get(http_client, url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert accepted.code == 200
    assert json.loads(accepted.body)["key"] == BOOK
    cover = await get(http_client, f"{base_url}/cover?id={BOOK}&provider=gb")
    assert json.loads(cover.body) == {BOOK: mine}
    assert fake.asked("gb") == []  # the override answered


@pytest.mark.parametrize(
    "query",
    ["provider=gb&id=abc&url=https://a.org/x.jpg", "provider=xx&id=1&url=https://a.org/x.jpg",
     f"provider=gb&id={BOOK}&url=javascript:alert(1)", f"provider=gb&id={BOOK}&url=https://a.org/x&ttl=-1"],
)  # fmt: skip
async def test_set_checks_what_it_stores(
    http_client: AsyncHTTPClient, base_url: str, query: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await get(http_client, f"{base_url}/set?{query}", headers=headers)
    assert response.code == 400


@pytest.mark.parametrize("cover_overrides", [{}])
async def test_set_is_off_without_a_token(
    http_client: AsyncHTTPClient, base_url: str, cover_overrides: dict[str, Any]
) -> None:
    response = await get(
        http_client,
        f"{base_url}/set?provider=gb&id={BOOK}&url=https://a.org/x.jpg",
        headers={"Authorization": "Bearer anything-at-all-here"},
    )
    assert response.code == 403
    assert "off" in json.loads(response.body)["error"]
