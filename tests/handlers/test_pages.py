"""Pages as images over HTTP: `name;N` (also `%3B`), info.json per page, 404s and errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from iiif_server.config import Settings
from tests.conftest import make_settings
from tests.imaging.documents import PAGE_COLOURS, huge_pdf, pdf_pages, tiff_pages

pytestmark = pytest.mark.gen_test(timeout=30)


@pytest.fixture
def source_path(source_path: Path) -> Path:
    sample = source_path / "sample"
    pdf_pages(sample / "scan.pdf")
    tiff_pages(sample / "pages.tif")
    huge_pdf(sample / "bomb.pdf")
    (sample / "broken.pdf").write_bytes(b"%PDF-1.7\nnothing a reader could use")
    return source_path


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, request: pytest.FixtureRequest) -> Settings:
    overrides = getattr(request, "param", {})
    return make_settings(tmp_path, source_path, **overrides)


async def get(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    return await client.fetch(url, raise_error=False, follow_redirects=False, **kwargs)


def colour(response: HTTPResponse) -> tuple[int, ...]:
    image = Image.open(io.BytesIO(response.body)).convert("RGB")
    value = image.getpixel((image.width // 2, image.height // 2))
    assert isinstance(value, tuple)
    return value


def near(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return all(abs(a - e) <= 6 for a, e in zip(actual, expected, strict=True))


@pytest.mark.parametrize("spelling", [";", "%3B", "%3b"])
async def test_each_pdf_page_has_its_own_info(
    http_client: AsyncHTTPClient, base_url: str, spelling: str
) -> None:
    url = f"{base_url}/iiif/3/sample:scan.pdf{spelling}2"
    response = await get(http_client, f"{url}/info.json")
    assert response.code == 200
    info = json.loads(response.body)
    assert (info["width"], info["height"]) == (1650, 1275)  # landscape letter at 150 dpi
    assert info["id"] == url  # the client's own spelling
    first = json.loads(
        (await get(http_client, f"{base_url}/iiif/3/sample:scan.pdf/info.json")).body
    )
    assert (first["width"], first["height"]) == (1275, 1650)


async def test_pages_are_images_and_never_share_a_cached_derivative(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    for _ in range(2):  # rendered, then from the caches
        for name in ("scan.pdf", "pages.tif"):
            for page, expected in enumerate(PAGE_COLOURS, start=1):
                for version, size in ((3, "!200,200"), (2, "200,")):
                    url = (
                        f"{base_url}/iiif/{version}/sample:{name};{page}/full/{size}/0/default.jpg"
                    )
                    response = await get(http_client, url)
                    assert response.code == 200, url
                    assert near(colour(response), expected), (url, colour(response))
    plain = await get(http_client, f"{base_url}/iiif/3/sample:scan.pdf/full/!200,200/0/default.png")
    assert near(colour(plain), PAGE_COLOURS[0])  # no suffix: page 1 of a PDF


async def test_a_tiff_without_a_page_is_its_largest_page(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    info = json.loads((await get(http_client, f"{base_url}/iiif/3/pages.tif/info.json")).body)
    assert (info["width"], info["height"]) == (600, 400)
    one = json.loads((await get(http_client, f"{base_url}/iiif/3/pages.tif;1/info.json")).body)
    assert (one["width"], one["height"]) == (300, 200)


@pytest.mark.parametrize(
    "identifier",
    ["sample:scan.pdf;4", "sample:scan.pdf;0", "scan.pdf;0000009", "sample:pages.tif;4",
     "sample:red.jpg;2", "sample:scan.pdf;99999999999", "sample:absent.pdf;1"],
)  # fmt: skip
async def test_a_page_that_does_not_exist_is_404(
    http_client: AsyncHTTPClient, base_url: str, identifier: str
) -> None:
    for path in ("info.json", "full/max/0/default.jpg"):
        response = await get(http_client, f"{base_url}/iiif/3/{identifier}/{path}")
        assert response.code == 404, (identifier, path)


async def test_a_single_image_is_its_own_page_1(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await get(http_client, f"{base_url}/iiif/3/sample:red.jpg;1/full/max/0/default.jpg")
    assert response.code == 200 and near(colour(response), (200, 30, 30))


async def test_a_corrupt_pdf_and_a_pdf_bomb_are_clear_errors(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    broken = await get(http_client, f"{base_url}/iiif/3/broken.pdf/info.json")
    assert broken.code == 500 and b"PDF document is corrupt" in broken.body
    bomb = await get(http_client, f"{base_url}/iiif/3/bomb.pdf/full/!100,100/0/default.jpg")
    assert bomb.code == 500 and b"more than" in bomb.body


@pytest.mark.parametrize("settings", [{"page_delimiter": "@", "pdf_dpi": 72}], indirect=True)
async def test_the_delimiter_and_resolution_are_configured(
    http_client: AsyncHTTPClient, base_url: str, settings: Settings
) -> None:
    assert settings.page_delimiter == "@"
    response = await get(http_client, f"{base_url}/iiif/3/scan.pdf@3/info.json")
    assert response.code == 200
    assert (json.loads(response.body)["width"], json.loads(response.body)["height"]) == (300, 200)
    # `;` is now part of a name: there is no file called `scan.pdf;3`.
    assert (await get(http_client, f"{base_url}/iiif/3/scan.pdf;3/info.json")).code == 404
