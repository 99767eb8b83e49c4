"""Web sources and operations: a purge fetches again, downloads are counted in /metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from iiif_server.config import Settings
from tests.metrics.exposition import value
from tests.sources.conftest import web_settings
from tests.sources.upstream import Reply, Upstream, jpeg

pytestmark = pytest.mark.gen_test(timeout=30)
TOKEN = "a-long-enough-admin-token-for-tests"


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, upstream: Upstream) -> Settings:
    return web_settings(tmp_path, source_path, upstream, admin_token=TOKEN)


async def test_purge_fetches_a_web_source_again(
    http_client: AsyncHTTPClient, base_url: str, upstream: Upstream, tmp_path: Path
) -> None:
    async def info(name: str) -> tuple[int, bytes]:
        response = await http_client.fetch(
            f"{base_url}/iiif/3/museum:{name}/info.json", raise_error=False
        )
        return response.code, response.body

    async def purge(identifier: str) -> int:
        response = await http_client.fetch(
            f"{base_url}/admin/purge",
            method="POST",
            body=json.dumps({"identifiers": [identifier]}),
            headers={"Authorization": f"Bearer {TOKEN}"},
            raise_error=False,
        )
        return response.code

    upstream.routes["/images/a.jpg"] = Reply(body=jpeg((60, 40)))
    assert json.loads((await info("a.jpg"))[1])["width"] == 60
    assert (await info("late.jpg"))[0] == 404  # remembered for negative_cache_ttl
    downloads = [
        p for p in (tmp_path / "sources").rglob("*") if p.is_file() and "museum" in p.parts
    ]
    assert downloads  # the data file and its sidecar
    upstream.routes["/images/a.jpg"] = Reply(body=jpeg((80, 40)))
    upstream.routes["/images/late.jpg"] = Reply(body=jpeg((30, 30)))
    assert json.loads((await info("a.jpg"))[1])["width"] == 60
    assert (await info("late.jpg"))[0] == 404

    assert await purge("museum:a.jpg") == 200
    assert await purge("museum:late.jpg") == 200

    assert not any(p.exists() for p in downloads)
    assert json.loads((await info("a.jpg"))[1])["width"] == 80
    assert json.loads((await info("late.jpg"))[1])["width"] == 30
    assert upstream.paths().count("/images/a.jpg") == 2


async def test_fetch_outcomes_are_in_the_metrics(
    http_client: AsyncHTTPClient, base_url: str, upstream: Upstream
) -> None:
    upstream.routes["/images/a.jpg"] = Reply(body=jpeg())
    upstream.routes["/images/broken.jpg"] = Reply(500, b"", {})
    for name in ("a.jpg", "gone.jpg", "broken.jpg"):
        await http_client.fetch(f"{base_url}/iiif/3/museum:{name}/info.json", raise_error=False)
    text = (await http_client.fetch(f"{base_url}/metrics")).body.decode()
    for outcome in ("ok", "not_found", "error"):
        assert value(text, "iiif_web_fetches_total", outcome=outcome) == 1
