"""`iiif-server warm`: the advertised tiles and sizes are made once, ahead of viewers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from iiif_server.app import Server
from iiif_server.cli import main
from iiif_server.config import Settings
from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.info import InfoOptions
from iiif_server.iiif.params import Limits
from iiif_server.iiif.pyramid import advertised_requests
from iiif_server.warm import warm
from tests.conftest import TEST_IMAGE_ID


def test_advertised_requests_cover_every_tile_and_size() -> None:
    options = InfoOptions(Limits(10000, 10000, 10**8, True), tile_size=512, min_sizes_size=200)
    requests = list(advertised_requests(ImageInfo(1000, 700, "JPEG", "RGB"), options))
    assert requests[0] == ("0,0,1000,700", "500,350")  # scale factor 2: one tile
    assert ("512,512,488,188", "488,188") in requests  # the bottom-right tile at full size
    assert len([r for r in requests if r[0] != "full"]) == 1 + 4
    assert [r for r in requests if r[0] == "full"] == [
        ("full", "250,175"), ("full", "500,350"), ("full", "1000,700"),
    ]  # fmt: skip


def test_warm_then_serve_without_image_work(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, io_loop: Any, http_client: AsyncHTTPClient,
    base_url: str, server: Server,
) -> None:  # fmt: skip
    reports = asyncio.run(warm(settings, [TEST_IMAGE_ID, "sample:absent"]))
    assert reports[0].made >= 5 and reports[0].error is None
    assert reports[1].error is not None and reports[1].error.startswith("404")
    again = asyncio.run(warm(settings, [TEST_IMAGE_ID]))
    assert again[0].made == 0 and again[0].already == reports[0].made

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("image work after warming")

    monkeypatch.setattr(server.image_pool, "submit", refuse)

    async def fetch_all() -> list[int]:
        paths = ["512,512,488,488/488,488", "0,0,1000,1000/500,500", "full/250,250", "full/500,"]
        responses = [
            await http_client.fetch(f"{base_url}/iiif/3/{TEST_IMAGE_ID}/{p}/0/default.jpg",
                                    raise_error=False)
            for p in paths
        ]  # fmt: skip
        return [r.code for r in responses]

    assert io_loop.run_sync(fetch_all) == [200, 200, 200, 200]


def test_warm_command(
    tmp_path: Path, source_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "warm.yml"
    config.write_text(
        f"source_path: {source_path}\ncache_path: {tmp_path / 'cache'}\n"
        "size_pool_size: 1\nimage_pool_size: 1\n"
    )
    assert main(["warm", "--config", str(config), "red"]) == 0
    assert "red: " in capsys.readouterr().out
    assert main(["warm", "--config", str(config), "nothing"]) == 1
