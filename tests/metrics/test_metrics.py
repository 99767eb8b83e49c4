"""`/metrics`: requests by API and status, every cache's hits and misses, the pools."""

from __future__ import annotations

from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from iiif_server.config import Settings
from tests.conftest import make_settings
from tests.metrics.exposition import value

pytestmark = pytest.mark.gen_test(timeout=30)
TILE = "/iiif/3/red.jpg/full/100,/0/default.png"
TOKEN = "a-long-enough-admin-token-for-tests"


async def scrape(client: AsyncHTTPClient, base_url: str) -> str:
    response = await client.fetch(f"{base_url}/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.body.decode()


async def test_requests_and_caches_are_counted(http_client: AsyncHTTPClient, base_url: str) -> None:
    for _ in range(3):
        assert (await http_client.fetch(base_url + TILE)).code == 200  # miss, hot, hot
    assert (await http_client.fetch(f"{base_url}/iiif/3/red.jpg/info.json")).code == 200
    missing = await http_client.fetch(f"{base_url}/iiif/3/absent/info.json", raise_error=False)
    assert missing.code == 404
    assert (await http_client.fetch(f"{base_url}/no/such/path", raise_error=False)).code == 404

    text = await scrape(http_client, base_url)

    count = "iiif_http_request_duration_seconds_count"
    assert value(text, count, api="image", status="200") == 3
    assert value(text, count, api="info", status="200") == 1
    assert value(text, count, api="info", status="404") == 1
    assert value(text, count, api="not_found", status="404") == 1
    assert value(text, "iiif_http_request_duration_seconds_bucket", api="image", le="60.0") == 3
    lookups = "iiif_cache_lookups_total"
    assert value(text, lookups, cache="hot", result="hit") == 2
    assert value(text, lookups, cache="hot", result="miss") == 1
    assert value(text, lookups, cache="disk", result="miss") >= 1
    assert value(text, lookups, cache="info", result="miss") == 1  # red.jpg, probed once
    assert value(text, lookups, cache="info", result="hit") == 1  # the tile's, then info.json
    assert value(text, lookups, cache="decoded", result="miss") >= 1
    assert value(text, "iiif_pool_workers", pool="image") == 1
    assert value(text, "iiif_pool_queued_tasks", pool="image") == 0
    assert "iiif_pool_worker_restarts_total" in text


async def test_a_second_tile_of_a_decoded_image_is_a_decoded_hit(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    for size in ("100,", "120,"):
        assert (
            await http_client.fetch(f"{base_url}/iiif/3/red.jpg/full/{size}/0/default.png")
        ).code == 200
    text = await scrape(http_client, base_url)
    assert value(text, "iiif_cache_lookups_total", cache="decoded", result="hit") >= 1


class TestProtected:
    @pytest.fixture
    def settings(self, tmp_path: Path, source_path: Path) -> Settings:
        return make_settings(tmp_path, source_path, admin_token=TOKEN, metrics_need_token=True)

    async def test_metrics_can_ask_for_the_admin_token(
        self, http_client: AsyncHTTPClient, base_url: str
    ) -> None:
        assert (await http_client.fetch(f"{base_url}/metrics", raise_error=False)).code == 401
        allowed = await http_client.fetch(
            f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert allowed.code == 200


def test_api_labels_come_from_handler_classes() -> None:
    from iiif_server.handlers.base import NotFoundHandler
    from iiif_server.handlers.iiif import BaseURIHandler, ImageHandler
    from iiif_server.logs import api_label

    for cls, label in (
        (ImageHandler, "image"),
        (BaseURIHandler, "base_uri"),
        (NotFoundHandler, "not_found"),
    ):
        assert api_label(cls.__new__(cls)) == label
