"""The lookup over HTTP: redirects, 404s, 503 before a first listing, fallbacks, status, health."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.escape import to_unicode
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httputil import HTTPServerRequest, RequestStartLine
from tornado.routing import PathMatches

from iiif_server.app import Server, ServerApplication
from iiif_server.config import Settings
from iiif_server.handlers.lookup import (
    LookupHandler,
    LookupPath,
    LookupStatusHandler,
    redirects_first,
)
from iiif_server.lookup.config import LookupSettings
from iiif_server.products import Product
from tests.conftest import TEST_IMAGE_ID, make_settings
from tests.lookup.fake_editor import FakeEditor, fake_editor

pytestmark = pytest.mark.gen_test(timeout=30)

LISTING = {
    "fairerthandayfo00hugggoog": {
        "edit": "http://editor.example/fairer/edit/",
        "epub": "http://render.example/fairer.epub",
    },
    "bijdragenototde00valegoog": {"edit": "http://editor.example/kauri/edit/", "epub": None},
    "a/b c": {"edit": "https://editor.example/slash/edit/"},
}


@pytest.fixture
def editor_behaviour() -> str:
    return "good"


@pytest.fixture
def editor(editor_behaviour: str) -> Iterator[FakeEditor]:
    with fake_editor() as running:
        running.behaviour = editor_behaviour
        running.listings["archive.org"] = LISTING
        running.listings["ISBN"] = {"9780415480635": {"epub": "https://render.example/isbn.epub"}}
        yield running


@pytest.fixture
def lookup_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(
    tmp_path: Path, source_path: Path, editor: FakeEditor, lookup_overrides: dict[str, Any]
) -> Settings:
    lookup = LookupSettings(
        listing_url=editor.template,
        schemes=("archive.org", "ISBN"),
        interval=3600,
        fallback={"edit": "https://editor.example/import?scheme={scheme}&id={id}"},
    )
    return make_settings(
        tmp_path, source_path, lookup=dataclasses.replace(lookup, **lookup_overrides)
    )


def lookup_product(server: Server) -> Product:
    return next(product for product in server.products if product.name == "lookup")


async def loaded(server: Server) -> None:
    """Wait until the first sync of every scheme has landed in this process."""
    for _ in range(200):
        health = lookup_product(server).health()
        if all(scheme["loaded"] for scheme in health["schemes"].values()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the listings never loaded: {health}")


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("follow_redirects", False)
    return await client.fetch(url, raise_error=False, **kwargs)


async def test_a_listed_url_is_a_short_lived_redirect(
    http_client: AsyncHTTPClient, base_url: str, server: Server
) -> None:
    await loaded(server)
    for method in ("GET", "HEAD"):
        response = await get(
            http_client,
            f"{base_url}/lookup/archive.org/epub/fairerthandayfo00hugggoog",
            method=method,
        )
        assert response.code == 302
        assert response.headers["Location"] == "http://render.example/fairer.epub"
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Content-Length"] == "0"
        assert response.body == b""
    slash = await get(http_client, f"{base_url}/lookup/archive.org/edit/a%2Fb%20c")
    assert slash.headers["Location"] == "https://editor.example/slash/edit/"
    isbn = await get(http_client, f"{base_url}/lookup/ISBN/epub/9780415480635")
    assert isbn.headers["Location"] == "https://render.example/isbn.epub"


async def test_answered_redirects_leave_no_request_counted_in_flight(
    http_client: AsyncHTTPClient, base_url: str, server: Server, app: ServerApplication
) -> None:
    """A stopping server waits for the in-flight count to reach zero."""
    await loaded(server)
    for path in ("archive.org/edit/fairerthandayfo00hugggoog", "archive.org/epub/unknownbook"):
        await asyncio.gather(*(get(http_client, f"{base_url}/lookup/{path}") for _ in range(20)))
    assert app.in_flight == 0
    assert await app.wait_idle(1)


@pytest.mark.parametrize(
    "path",
    [
        "/lookup/archive.org/epub/bijdragenototde00valegoog",  # null
        "/lookup/archive.org/pdf/fairerthandayfo00hugggoog",  # no such mode
        "/lookup/archive.org/epub/unknownbook",  # no fallback for epub
        "/lookup/DOI/edit/fairerthandayfo00hugggoog",  # scheme not configured
        "/lookup/ISBN/edit/9780415480635",  # listed, but not for this mode: no fallback
    ],
)
async def test_nothing_to_redirect_to_is_a_404(
    http_client: AsyncHTTPClient, base_url: str, server: Server, path: str
) -> None:
    await loaded(server)
    response = await get(http_client, base_url + path)
    assert response.code == 404
    assert "Location" not in response.headers


async def test_an_unknown_id_goes_to_its_modes_fallback(
    http_client: AsyncHTTPClient, base_url: str, server: Server
) -> None:
    await loaded(server)
    response = await get(http_client, f"{base_url}/lookup/archive.org/edit/new%2Fbook%20%26%3F%23")
    assert response.code == 302
    assert response.headers["Location"] == (
        "https://editor.example/import?scheme=archive.org&id=new%2Fbook%20%26%3F%23"
    )


async def test_status_at_the_mount_and_in_health(
    http_client: AsyncHTTPClient, base_url: str, server: Server
) -> None:
    await loaded(server)
    status = json.loads((await get(http_client, f"{base_url}/lookup/")).body)["schemes"]
    assert status["archive.org"]["ids"] == 3
    assert status["archive.org"]["last_error"] is None
    assert status["archive.org"]["last_success"].endswith("Z")
    assert status["ISBN"]["loaded"] is True
    health = json.loads((await get(http_client, f"{base_url}/health")).body)
    assert health["lookup"]["leader"] is True
    assert health["lookup"]["schemes"]["archive.org"]["ids"] == 3


@pytest.mark.parametrize("lookup_overrides", [{"mount": "/"}])
async def test_at_the_root_other_paths_fall_through(
    http_client: AsyncHTTPClient, base_url: str, server: Server
) -> None:
    await loaded(server)
    response = await get(http_client, f"{base_url}/archive.org/epub/fairerthandayfo00hugggoog")
    assert response.headers["Location"] == "http://render.example/fairer.epub"
    assert (await get(http_client, f"{base_url}/iiif/3/{TEST_IMAGE_ID}/info.json")).code == 200
    assert (await get(http_client, f"{base_url}/DOI/edit/x")).body.startswith(
        b"404 Not Found: no such"
    )
    assert json.loads((await get(http_client, f"{base_url}/")).body)["schemes"]["ISBN"]["ids"] == 1


@pytest.mark.parametrize("lookup_overrides", [{"mount": "/iiif"}])
async def test_a_mount_under_anothers_path_leaves_that_product_its_routes(
    http_client: AsyncHTTPClient, base_url: str, server: Server
) -> None:
    await loaded(server)
    response = await get(http_client, f"{base_url}/iiif/archive.org/epub/fairerthandayfo00hugggoog")
    assert response.headers["Location"] == "http://render.example/fairer.epub"
    info = await get(http_client, f"{base_url}/iiif/3/{TEST_IMAGE_ID}/info.json")
    assert info.code == 200
    assert json.loads(info.body)["type"] == "ImageService3"


PATHS = [
    "/lookup/archive.org/edit/abc",
    "/lookup/archive.org/edit/a%2Fb%20c",  # an id with a slash and a space
    "/lookup/ISBN/epub/%C3%A9t%C3%A9",  # UTF-8, percent-encoded
    "/lookup/ISBN/epub/%ff",  # not UTF-8: Tornado answers 400
    "/lookup/ISBN/epub/plus+sign",
    "/lookup/archive.org/edit/",
    "/lookup/archive.org/edit/abc/",
    "/lookup/archive.org//abc",
    "/lookup/archive.org/edit",
    "/lookup/a/b/c/d",
    "/lookupx/a/b/c",
    "/lookup",
    "/archive.org/edit/abc",
    "/DOI/edit/abc",
]


@pytest.mark.parametrize("mount", ["/lookup", "/"])
def test_the_redirect_matcher_matches_and_decodes_as_the_route_pattern_did(mount: str) -> None:
    """`LookupPath` stands for `{mount}/([^/]+)/([^/]+)/([^/]+)` (schemes listed at `/`)."""
    root = "" if mount == "/" else mount
    scheme = "([^/]+)" if root else "(archive\\.org|ISBN)"
    regex = PathMatches(rf"{root}/{scheme}/([^/]+)/([^/]+)")
    ours = LookupPath(root, None if root else frozenset({"archive.org", "ISBN"}))
    for path in PATHS:
        request = HTTPServerRequest(start_line=RequestStartLine("GET", path, "HTTP/1.0"))
        expected, got = regex.match(request), ours.match(request)
        assert (got is None) == (expected is None), path
        if expected is not None and got is not None:
            assert [_unicode_or_bytes(a) for a in got["path_args"]] == [
                _unicode_or_bytes(a) for a in expected["path_args"]
            ], path


def _unicode_or_bytes(argument: str | bytes) -> str | bytes:
    """What the handler gets (RequestHandler.decode_argument), or the bytes it refuses."""
    try:
        return to_unicode(argument)
    except UnicodeDecodeError:
        return argument if isinstance(argument, bytes) else argument.encode()


def test_the_redirects_go_first_only_under_a_mount_no_other_route_starts_with() -> None:
    def order(mount: str) -> list[Any]:
        redirects: tuple[LookupPath, type[LookupHandler], dict[str, Any]]
        redirects = (LookupPath(mount, None), LookupHandler, {})
        routes = [
            ("/health", "health", {}),
            (r"/iiif/(2|3)/([^/]+)/info\.json", "info", {}),
            (rf"{mount}/?", LookupStatusHandler, {}),
            redirects,
            (r"/resources/(.*)", "resources", {}),
        ]
        return [route[1] for route in redirects_first(routes)]

    assert order("/lookup")[0] is LookupHandler
    assert order("/iiif")[3] is LookupHandler  # `/iiif/3/x/info.json` stays the image API's
    assert order("/health")[3] is LookupHandler


@pytest.mark.parametrize("editor_behaviour", ["500"])
async def test_before_a_first_listing_the_answer_is_503_not_404(
    http_client: AsyncHTTPClient, base_url: str, server: Server, editor: FakeEditor
) -> None:
    for _ in range(200):  # the first sync fails
        status = lookup_product(server).health()["schemes"]["archive.org"]
        if status["last_error"] is not None:
            break
        await asyncio.sleep(0.05)
    assert status["last_error"] == "the editor answered HTTP 500"
    response = await get(
        http_client, f"{base_url}/lookup/archive.org/edit/fairerthandayfo00hugggoog"
    )
    assert response.code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"
