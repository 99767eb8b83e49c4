"""The resources API inside the whole server: transforms in the image pool, mount `/`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from iiif_server.app import Server
from iiif_server.config import Settings
from iiif_server.resources.config import ResourcesSettings
from iiif_server.resources.service import ResourceService
from tests.conftest import make_settings
from tests.handlers.test_resources import (
    CHAPTER,
    books,
    get,
    near,
    pixels,
    transform,
)
from tests.imaging.images import YELLOW

pytestmark = pytest.mark.gen_test(timeout=60)
__all__ = ["books"]  # a fixture


@pytest.fixture
def mount() -> str:
    return "/resources"


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, books: Path, mount: str) -> Settings:
    resources = ResourcesSettings(root=books, mount=mount, intermediate_sizes=(100, 200))
    return make_settings(tmp_path, source_path, resources=resources)


@pytest.fixture
def prefix(base_url: str) -> str:
    return base_url + "/resources"


def service_of(server: Server) -> ResourceService:
    service = server.products[-1].service  # type: ignore[attr-defined]
    assert isinstance(service, ResourceService)
    return service


async def test_later_transforms_start_from_reduced_copies(
    http_client: AsyncHTTPClient, prefix: str, server: Server
) -> None:
    service = service_of(server)
    await transform(http_client, prefix, "img:w=300", "square.png")
    for _ in range(200):  # the copies are made in the background
        if not service.health()["reducing"]:
            break
        await asyncio.sleep(0.05)
    await server.derivatives.flush()
    target = service.resolve("params;v=0;img:w=90/square.png")
    source, region = service.reduced_copy(target)
    assert source.path.startswith(str(server.derivatives.root))
    assert region == (0, 0, 100, 100)  # the 100 px copy is enough for 90 px
    image = pixels((await transform(http_client, prefix, "img:w=90", "square.png")).body)
    assert image.size == (90, 90) and near(image.getpixel((80, 80)), YELLOW)  # type: ignore[arg-type]
    larger = service.resolve("params;v=0;img:w=150/square.png")
    assert service.reduced_copy(larger)[1] == (0, 0, 200, 200)


# Mounted at the server root


@pytest.mark.parametrize("mount", ["/"])
async def test_mounted_at_the_root_the_other_apis_win(
    http_client: AsyncHTTPClient, base_url: str, books: Path, mount: str
) -> None:
    assert mount == "/"
    (books / "health").write_text("a file called health")
    (books / "iiif" / "3").mkdir(parents=True)
    response = await get(http_client, f"{base_url}/health")
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body)["resources"]["serving"] is True
    info = await get(http_client, f"{base_url}/iiif/3/red.jpg/info.json")
    assert info.code == 200 and info.headers["Content-Type"].startswith("application/ld+json")
    ok = await get(http_client, f"{base_url}/book.epub/OEBPS/ch1.xhtml")
    assert ok.code == 200 and ok.body == CHAPTER
    assert ok.headers["Content-Location"] == "/book.epub/OEBPS/ch1.xhtml"
    resized = await get(http_client, f"{base_url}/params;v=0;img:w=10/quad.png")
    assert resized.headers["Content-Location"].startswith("/params;img:h=5;")
    assert (await get(http_client, f"{base_url}/nothing")).code == 404


async def test_root_off_means_no_route(tmp_path: Path, settings: Settings) -> None:
    off = dataclasses.replace(settings, resources=ResourcesSettings(root=None))
    assert Server(off).products[-1].routes() == []
