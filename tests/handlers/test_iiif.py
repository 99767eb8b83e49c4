"""The Image API over HTTP: statuses, headers, negotiation, conditional requests."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from tests.conftest import TEST_IMAGE_ID

pytestmark = pytest.mark.gen_test(timeout=30)


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("follow_redirects", False)
    return await client.fetch(url, raise_error=False, **kwargs)


async def test_info_json_v3(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await get(http_client, f"{base_url}/iiif/3/{TEST_IMAGE_ID}/info.json")
    assert response.code == 200
    assert response.headers["Content-Type"] == (
        'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    info = json.loads(response.body)
    assert info["id"] == f"{base_url}/iiif/3/{TEST_IMAGE_ID}"
    assert (info["width"], info["height"]) == (1000, 1000)
    assert info["tiles"][0]["scaleFactors"] == [1, 2]
    plain = await get(http_client, response.effective_url, headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"] == "application/json"


async def test_info_json_v2(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await get(http_client, f"{base_url}/iiif/2/sample:{TEST_IMAGE_ID}/info.json")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/json"
    info = json.loads(response.body)
    assert info["@id"] == f"{base_url}/iiif/2/sample:{TEST_IMAGE_ID}"
    assert info["profile"][0] == "http://iiif.io/api/image/2/level2.json"
    ld = await get(http_client, response.effective_url, headers={"Accept": "application/ld+json"})
    assert ld.headers["Content-Type"].startswith("application/ld+json")


async def test_rights_per_type(
    http_client: AsyncHTTPClient, base_url: str, source_path: Any
) -> None:
    Image.new("RGB", (50, 50)).save(source_path / "other" / "x.png")
    v3 = json.loads((await get(http_client, f"{base_url}/iiif/3/other:x/info.json")).body)
    v2 = json.loads((await get(http_client, f"{base_url}/iiif/2/other:x/info.json")).body)
    assert v3["rights"] == v2["license"] == "http://creativecommons.org/publicdomain/zero/1.0/"


async def test_id_honours_forwarded_headers(http_client: AsyncHTTPClient, base_url: str) -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "images.example.org",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Prefix": "/iiif-server/",
    }
    response = await get(http_client, f"{base_url}/iiif/3/red/info.json", headers=headers)
    assert json.loads(response.body)["id"] == "https://images.example.org/iiif-server/iiif/3/red"
    headers["X-Forwarded-Port"] = "8443"
    response = await get(http_client, f"{base_url}/iiif/3/red/info.json", headers=headers)
    assert (
        json.loads(response.body)["id"] == "https://images.example.org:8443/iiif-server/iiif/3/red"
    )


async def test_id_keeps_the_clients_spelling(http_client: AsyncHTTPClient, base_url: str) -> None:
    escaped = TEST_IMAGE_ID.replace("-", "%2D")
    response = await get(http_client, f"{base_url}/iiif/3/{escaped}/info.json")
    assert json.loads(response.body)["id"] == f"{base_url}/iiif/3/{escaped}"
    sub = await get(http_client, f"{base_url}/iiif/3/sample:sub%2Fblue/info.json")
    assert sub.code == 200
    assert json.loads(sub.body)["id"] == f"{base_url}/iiif/3/sample:sub%2Fblue"


async def test_base_uri_redirects_to_info(http_client: AsyncHTTPClient, base_url: str) -> None:
    for version in (2, 3):
        response = await get(http_client, f"{base_url}/iiif/{version}/red")
        assert response.code == 303
        assert response.headers["Location"] == f"{base_url}/iiif/{version}/red/info.json"


async def test_image_response_headers(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await get(http_client, f"{base_url}/iiif/3/red/full/300,/0/default.jpg")
    assert response.code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    assert response.headers["ETag"].startswith('"')
    assert "Last-Modified" in response.headers
    link = response.headers["Link"]
    assert '<http://iiif.io/api/image/3/level2.json>;rel="profile"' in link
    assert f'<{base_url}/iiif/3/red/full/300,200/0/default.jpg>;rel="canonical"' in link
    assert Image.open(io.BytesIO(response.body)).size == (300, 200)


async def test_conditional_requests_get_304(http_client: AsyncHTTPClient, base_url: str) -> None:
    url = f"{base_url}/iiif/3/red/full/100,/0/default.png"
    first = await get(http_client, url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = await get(http_client, url, headers={"If-None-Match": etag})
    assert again.code == 304 and again.body == b""
    assert (await get(http_client, url, headers={"If-Modified-Since": modified})).code == 304
    # The same output spelled otherwise has the same validator.
    other = f"{base_url}/iiif/2/red/full/100,67/0/default.png"
    assert (await get(http_client, other, headers={"If-None-Match": etag})).code == 304
    assert (await get(http_client, url, headers={"If-None-Match": '"other"'})).code == 200


async def test_head_and_options(http_client: AsyncHTTPClient, base_url: str) -> None:
    url = f"{base_url}/iiif/3/red/full/max/0/default.jpg"
    head = await get(http_client, url, method="HEAD")
    assert head.code == 200 and head.body == b""
    assert head.headers["Content-Type"] == "image/jpeg"
    preflight = await get(
        http_client,
        f"{base_url}/iiif/3/red/info.json",
        method="OPTIONS",
        headers={
            "Origin": "https://viewer.example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/iiif/3/red/nope/max/0/default.jpg", 400),
        ("/iiif/3/red/0,0,0,0/max/0/default.jpg", 400),
        ("/iiif/3/red/5000,5000,10,10/max/0/default.jpg", 400),
        ("/iiif/3/red/full/full/0/default.jpg", 400),
        ("/iiif/3/red/full/601,/0/default.jpg", 400),
        ("/iiif/3/red/full/99999,/0/default.jpg", 400),
        ("/iiif/3/red/full/max/-90/default.jpg", 400),
        ("/iiif/3/red/full/max/0/grey.jpg", 400),
        ("/iiif/3/red/full/max/0/default.bmp", 400),
        ("/iiif/3/red/full/max/0/default", 400),
        ("/iiif/2/red/full/^max/0/default.jpg", 400),
        ("/iiif/3/nothing/full/max/0/default.jpg", 404),
        ("/iiif/3/nothing/info.json", 404),
        ("/iiif/3/unknown:red/info.json", 404),
        ("/iiif/3/red/extra/full/max/0/default.jpg", 404),
        ("/iiif/3/sample:sub/blue/info.json", 404),  # an unencoded slash
        ("/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json", 404),
        ("/iiif/3/%2Fetc%2Fpasswd/info.json", 404),
        ("/iiif/3/red%00.jpg/info.json", 400),
        ("/iiif/4/red/info.json", 404),
        ("/elsewhere", 404),
    ],
)
async def test_bad_requests_get_clear_errors(
    http_client: AsyncHTTPClient, base_url: str, path: str, status: int
) -> None:
    response = await get(http_client, base_url + path)
    assert response.code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.body.startswith(str(status).encode())
    assert len(response.body) < 300 and b"Traceback" not in response.body


async def test_corrupt_sources_are_a_clear_500(http_client: AsyncHTTPClient, base_url: str) -> None:
    for name in ("broken", "garbage"):
        response = await get(http_client, f"{base_url}/iiif/3/{name}/full/max/0/default.jpg")
        assert response.code == 500, name
        assert b"Traceback" not in response.body
    # The worker survives: the next request is served.
    ok = await get(http_client, f"{base_url}/iiif/3/red/full/50,/0/default.jpg")
    assert ok.code == 200


async def test_health(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await get(http_client, f"{base_url}/health")
    assert response.code == 200
    assert json.loads(response.body)["status"] == "ok"


@pytest.mark.parametrize(
    ("extension", "content_type", "pillow_format"),
    [("webp", "image/webp", "WEBP"), ("jp2", "image/jp2", "JPEG2000"), ("gif", "image/gif", "GIF"),
     ("tif", "image/tiff", "TIFF"), ("png", "image/png", "PNG")],
)  # fmt: skip
async def test_output_formats(
    http_client: AsyncHTTPClient, base_url: str, extension: str, content_type: str,
    pillow_format: str,
) -> None:  # fmt: skip
    url = f"{base_url}/iiif/3/{TEST_IMAGE_ID}/pct:0,0,20,10/!150,150/90/default.{extension}"
    response = await get(http_client, url)
    assert response.code == 200
    assert response.headers["Content-Type"] == content_type
    image = Image.open(io.BytesIO(response.body))
    assert image.format == pillow_format
    assert image.size == (75, 150)  # a 200x100 region, fitted in 150x150, then turned a quarter


async def test_pdf_output(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await get(http_client, f"{base_url}/iiif/2/red/full/200,/0/default.pdf")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.body.startswith(b"%PDF") and b"/Type /Page" in response.body
