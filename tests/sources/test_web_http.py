"""Web sources through the whole server: info.json, images, caches and error statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from iiif_server.config import Settings
from iiif_server.sources.trusted_web import encode_url
from tests.sources.conftest import web_settings
from tests.sources.upstream import Reply, Upstream, jpeg

pytestmark = pytest.mark.gen_test(timeout=60)


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, upstream: Upstream) -> Settings:
    return web_settings(tmp_path, source_path, upstream, http_timeout=0.5)


async def get(
    client: AsyncHTTPClient, base_url: str, path: str, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return await client.fetch(base_url + path, raise_error=False, headers=headers)


async def test_web_images_are_served_like_disk_images(
    http_client: AsyncHTTPClient, base_url: str, upstream: Upstream
) -> None:
    upstream.routes["/images/red.jpg"] = Reply(body=jpeg((600, 400)))
    info = await get(http_client, base_url, "/iiif/3/museum:red.jpg/info.json")
    assert info.code == 200
    document = json.loads(info.body)
    assert (document["width"], document["height"]) == (600, 400)
    assert document["id"].endswith("/iiif/3/museum:red.jpg")

    full = await get(http_client, base_url, "/iiif/3/museum:red.jpg/full/max/0/default.jpg")
    assert full.code == 200 and Image.open(io.BytesIO(full.body)).size == (600, 400)
    small = await get(http_client, base_url, "/iiif/2/museum:red.jpg/full/150,/0/default.png")
    assert small.code == 200 and Image.open(io.BytesIO(small.body)).size == (150, 100)
    again = await get(http_client, base_url, "/iiif/2/museum:red.jpg/full/150,/0/default.png")
    assert again.body == small.body
    etag = again.headers["ETag"]
    unchanged = await get(
        http_client,
        base_url,
        "/iiif/2/museum:red.jpg/full/150,/0/default.png",
        {"If-None-Match": etag},
    )
    assert unchanged.code == 304
    assert upstream.paths() == ["/images/red.jpg"]


async def test_upstream_failures_answer_their_statuses(
    http_client: AsyncHTTPClient, base_url: str, upstream: Upstream
) -> None:
    upstream.routes["/images/error.jpg"] = Reply(500, b"", {})
    upstream.routes["/images/slow.jpg"] = Reply(body=jpeg(), delay=5)
    upstream.routes["/images/page.jpg"] = Reply(
        body=b"<html/>", headers={"Content-Type": "text/html"}
    )
    refused = "partner:" + encode_url(upstream.url("/elsewhere/a.jpg"))
    expected = {
        "museum:missing.jpg": 404,
        "museum:error.jpg": 502,
        "museum:slow.jpg": 504,
        "museum:page.jpg": 502,
        refused: 400,
    }
    for identifier, status in expected.items():
        response = await get(http_client, base_url, f"/iiif/3/{identifier}/info.json")
        assert response.code == status, identifier
        assert response.body.decode().startswith(f"{status} ")
        assert identifier[:40] in response.body.decode()
    image = await get(http_client, base_url, "/iiif/3/museum:error.jpg/full/max/0/default.jpg")
    assert image.code == 502
