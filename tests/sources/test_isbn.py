"""The `isbn` source end to end: a cover found by the providers, served through IIIF."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.ioloop import IOLoop

from iiif_server.config import Settings, TypeSettings
from iiif_server.sources.isbn import CoverUrlLocator
from tests.conftest import make_settings
from tests.covers.fake_provider import FakeProviders

pytestmark = pytest.mark.gen_test(timeout=30)

BOOK = "9780415480635"
OL_ONLY = "9780306406157"
TOKEN = "isbn-purge-token-0123456789"


@pytest.fixture
def fake(io_loop: IOLoop) -> Iterator[FakeProviders]:
    providers = FakeProviders()
    io_loop.run_sync(providers.start)
    providers.gb[BOOK] = "v1"
    providers.ol[OL_ONLY] = 33
    yield providers
    io_loop.run_sync(providers.close)


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, fake: FakeProviders) -> Settings:
    """An `isbn` type; the fake is on loopback and private addresses stay forbidden."""
    types = {
        "sample": TypeSettings(name="sample"),
        "isbn": TypeSettings(name="isbn", source="isbn"),
    }
    return make_settings(
        tmp_path, source_path, types=types, covers=fake.settings(timeout=1000), admin_token=TOKEN
    )


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    return await client.fetch(url, raise_error=False, **kwargs)


async def test_a_cover_is_served_exactly_sized_through_iiif(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    response = await get(http_client, f"{base_url}/iiif/3/isbn:{BOOK}/full/100,/0/default.jpg")
    assert response.code == 200, response.body
    assert response.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.body)) as image:
        assert image.size == (100, 150)  # the fake's cover is 128x192

    # Another form of the same ISBN, another operation: the same downloaded source.
    info = await get(http_client, f"{base_url}/iiif/3/isbn:0-415-48063-9/info.json")
    assert (json.loads(info.body)["width"], json.loads(info.body)["height"]) == (128, 192)
    square = await get(
        http_client, f"{base_url}/iiif/2/isbn:978-0-415-48063-5/square/64,64/90/gray.png"
    )
    assert square.code == 200 and square.headers["Content-Type"] == "image/png"
    assert len(fake.asked("image")) == 1
    assert len(fake.asked("gb")) == 1


async def test_the_configured_provider_order_is_followed(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    response = await get(http_client, f"{base_url}/iiif/3/isbn:{OL_ONLY}/full/max/0/default.jpg")
    assert response.code == 200
    assert fake.asked("image") == ["/ol/b/id/33-M.jpg"]


@pytest.mark.parametrize("name", ["9791090636071", "not-an-isbn"])
async def test_no_cover_is_a_404(http_client: AsyncHTTPClient, base_url: str, name: str) -> None:
    response = await get(http_client, f"{base_url}/iiif/3/isbn:{name}/info.json")
    assert response.code == 404


async def test_providers_that_cannot_answer_are_a_503_not_a_404(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    fake.mode.update(gb="fail", ol="fail")
    response = await get(http_client, f"{base_url}/iiif/3/isbn:{BOOK}/info.json")
    assert response.code == 503
    fake.mode.update(gb="ok", ol="ok")  # nothing was remembered from the outage
    response = await get(http_client, f"{base_url}/iiif/3/isbn:{BOOK}/info.json")
    assert response.code == 200


async def test_only_the_provider_hosts_are_trusted() -> None:
    locator = CoverUrlLocator(["http://10.1.2.3:8000/gb/books", "https://openlibrary.org/api"])
    assert locator.trusts_host("http://10.1.2.3:8000/gb/content?id=1")
    assert not locator.trusts_host("http://10.9.9.9/secret")
    assert not locator.trusts_host("https://covers.openlibrary.org/b/id/1-M.jpg")  # public anyway
    assert locator.url_for("https://covers.openlibrary.org/b/id/1-M.jpg")


async def purge(client: AsyncHTTPClient, base_url: str, query: str) -> HTTPResponse:
    return await client.fetch(
        f"{base_url}/admin/purge{query}",
        method="POST",
        body=b"",
        headers={"Authorization": f"Bearer {TOKEN}"},
        raise_error=False,
    )


async def test_purging_one_isbn_downloads_its_cover_again_and_no_other(
    http_client: AsyncHTTPClient, base_url: str, fake: FakeProviders
) -> None:
    book = f"{base_url}/iiif/3/isbn:{BOOK}/full/100,/0/default.jpg"
    other = f"{base_url}/iiif/3/isbn:{OL_ONLY}/full/50,/0/default.jpg"
    assert (await get(http_client, book)).code == 200
    assert (await get(http_client, other)).code == 200
    assert len(fake.asked("image")) == 2

    # Another spelling of the same book reaches the same download.
    answer = await purge(http_client, base_url, "?identifier=isbn:0-415-48063-9")
    assert answer.code == 200, answer.body
    assert (await get(http_client, book)).code == 200
    assert (await get(http_client, other)).code == 200
    assert len(fake.asked("image")) == 3  # the purged cover again, the other one from the store

    # A book without a cover was never downloaded: nothing to forget, not an error.
    assert (await purge(http_client, base_url, "?identifier=isbn:9781234567897")).code == 200
    assert (await purge(http_client, base_url, "?identifier=isbn:not-a-book")).code == 400
