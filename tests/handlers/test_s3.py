"""The Image API over objects in an S3-compatible store: info.json, tiles, failures."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from iiif_server.config import Settings, TypeSettings
from tests import s3store
from tests.conftest import make_settings
from tests.s3store import free_ports
from tests.sources.conftest import s3_type

pytestmark = pytest.mark.gen_test(timeout=60)
PREFIX = f"http-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, s3: s3store.S3Store) -> Settings:
    closed = f"http://127.0.0.1:{free_ports(1)[0]}"
    types = {
        "sample": TypeSettings(name="sample"),
        "museum": s3_type("museum", s3.endpoint_url, PREFIX),
        "down": s3_type("down", closed, PREFIX),
    }
    return make_settings(tmp_path, source_path, types=types)


@pytest.fixture(scope="module")
def photo(s3: s3store.S3Store) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((1200, 900), 60).convert("RGB").save(buffer, "JPEG", quality=90)
    body = buffer.getvalue()
    s3.client().put_object(Bucket=s3store.BUCKET, Key=f"{PREFIX}inv/1234.jpg", Body=body)
    return body


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    return await client.fetch(url, raise_error=False, follow_redirects=False, **kwargs)


async def test_info_json_and_tiles_of_an_object(
    http_client: AsyncHTTPClient, base_url: str, photo: bytes
) -> None:
    base = f"{base_url}/iiif/3/museum:inv%2F1234.jpg"
    info = await get(http_client, f"{base}/info.json")
    assert info.code == 200
    document = json.loads(info.body)
    assert (document["width"], document["height"]) == (1200, 900)
    assert document["id"] == base
    tile = await get(http_client, f"{base}/512,512,512,388/512,/0/default.jpg")
    assert tile.code == 200 and tile.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(tile.body)).size == (512, 388)
    whole = await get(http_client, f"{base}/full/max/0/default.png")
    assert Image.open(io.BytesIO(whole.body)).size == (1200, 900)


async def test_missing_objects_and_escaping_names_are_404(
    http_client: AsyncHTTPClient, base_url: str, photo: bytes
) -> None:
    for name in ("museum:inv%2Fnone.jpg", "museum:..%2Finv%2F1234.jpg", "museum:%2Fx.jpg"):
        response = await get(http_client, f"{base_url}/iiif/3/{name}/info.json")
        assert response.code == 404, name
        response = await get(http_client, f"{base_url}/iiif/3/{name}/full/max/0/default.jpg")
        assert response.code == 404, name


async def test_an_unreachable_store_is_502(http_client: AsyncHTTPClient, base_url: str) -> None:
    for path in ("info.json", "full/max/0/default.jpg"):
        response = await get(http_client, f"{base_url}/iiif/3/down:inv%2F1234.jpg/{path}")
        assert response.code == 502
        assert b"object store cannot be reached" in response.body
