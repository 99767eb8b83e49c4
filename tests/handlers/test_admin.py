"""`/admin/purge`: the token rules, the request forms, and every cache layer really emptied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from iiif_server.app import Server
from iiif_server.cache_layout import source_tag
from iiif_server.config import Settings
from iiif_server.imaging.render import decoded_cache_stats
from tests.conftest import make_settings
from tests.imaging.documents import pdf_pages
from tests.purge.same_stat import replace_unseen, write_padded

pytestmark = pytest.mark.gen_test(timeout=30)

TOKEN = "a-long-enough-admin-token-for-tests"
RED = "/iiif/3/red.jpg/full/100,/0/default.png"


@pytest.fixture
def settings(tmp_path: Path, source_path: Path) -> Settings:
    return make_settings(tmp_path, source_path, admin_token=TOKEN)


async def purge(
    client: AsyncHTTPClient, base_url: str, query: str = "", body: Any = None, **kwargs: Any
) -> HTTPResponse:
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {TOKEN}"})
    return await client.fetch(
        f"{base_url}/admin/purge{query}",
        method=kwargs.pop("method", "POST"),
        body=json.dumps(body) if body is not None else b"",
        headers=headers,
        raise_error=False,
        allow_nonstandard_methods=True,
    )


def derivative_files(server: Server, source: Path) -> list[Path]:
    tag = source_tag(str(source.resolve()))
    return list((server.derivatives.root / tag[:2]).glob(f"{tag}-*"))


async def decoded_entries(server: Server) -> int:
    entries = 0
    for stats in await server.image_pool.broadcast(decoded_cache_stats):
        assert stats is not None  # every worker answered
        entries += stats["entries"]
    return entries


async def test_without_a_token_401_with_a_wrong_one_403(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    missing = await purge(http_client, base_url, "?all=true", headers={})
    assert missing.code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await purge(
        http_client, base_url, "?all=true", headers={"Authorization": f"Bearer {TOKEN}x"}
    )
    assert wrong.code == 403
    basic = await purge(http_client, base_url, "?all=true", headers={"Authorization": "Basic eA=="})
    assert basic.code == 401


async def test_bad_requests_are_400_and_unknown_types_404(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    assert (await purge(http_client, base_url)).code == 400  # names nothing
    assert (await purge(http_client, base_url, "?all=true&type=sample")).code == 400
    assert (await purge(http_client, base_url, body={"identifiers": "red.jpg"})).code == 400
    assert (await purge(http_client, base_url, "?all=maybe")).code == 400
    assert (await purge(http_client, base_url, "?type=nope")).code == 404
    assert (await purge(http_client, base_url, "?identifier=nope:x")).code == 404
    assert (await purge(http_client, base_url, "?identifier=sample:../x")).code == 404


async def test_purging_an_identifier_empties_every_layer_and_the_next_request_recomputes(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path
) -> None:
    red = source_path / "sample" / "red.jpg"
    blue = "/iiif/3/sub%2Fblue.png/full/50,/0/default.png"
    assert (await http_client.fetch(base_url + blue)).code == 200
    blue_decodes = await decoded_entries(server)
    assert (await http_client.fetch(base_url + RED)).code == 200
    await server.derivatives.flush()
    assert len(derivative_files(server, red)) == 1
    assert server.service.hot(RED) is not None
    assert await decoded_entries(server) > blue_decodes > 0

    response = await purge(http_client, base_url, "?identifier=red")  # the default type
    assert response.code == 200
    assert json.loads(response.body)["purged"] == ["sample:red"]
    assert json.loads(response.body)["other_processes"] == {"confirmed": 0, "unconfirmed": 0}

    assert derivative_files(server, red) == []
    assert server.service.hot(RED) is None
    assert await decoded_entries(server) == blue_decodes  # blue's decodes stay
    assert server.service.hot(blue) is not None
    again = await http_client.fetch(base_url + RED)
    assert again.code == 200
    assert await decoded_entries(server) > blue_decodes  # decoded and rendered again
    await server.derivatives.flush()
    assert len(derivative_files(server, red)) == 1


async def test_purge_reaches_a_changed_file_that_keeps_its_size_and_mtime(
    http_client: AsyncHTTPClient, base_url: str, source_path: Path
) -> None:
    """What purge is for: content replaced in a way no stat() can see."""
    red = source_path / "sample" / "red.jpg"
    write_padded(red, Image.new("RGB", (600, 400), (200, 30, 30)))
    first = await http_client.fetch(base_url + "/iiif/3/red.jpg/info.json")
    assert json.loads(first.body)["width"] == 600
    replace_unseen(red, Image.new("RGB", (400, 600), (0, 200, 0)))
    cached = await http_client.fetch(base_url + "/iiif/3/red.jpg/info.json")
    assert json.loads(cached.body)["width"] == 600  # the remembered info

    assert (
        await purge(http_client, base_url, body={"identifiers": ["sample:red.jpg"]})
    ).code == 200

    fresh = await http_client.fetch(base_url + "/iiif/3/red.jpg/info.json", raise_error=False)
    assert json.loads(fresh.body)["width"] == 400


async def test_purging_a_type_or_everything(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path
) -> None:
    (source_path / "other" / "x.jpg").write_bytes((source_path / "sample" / "red.jpg").read_bytes())
    other = "/iiif/3/other:x/full/100,/0/default.png"
    assert (await http_client.fetch(base_url + RED)).code == 200
    red_decodes = await decoded_entries(server)
    assert (await http_client.fetch(base_url + other)).code == 200
    await server.derivatives.flush()

    assert (await purge(http_client, base_url, "?type=other", method="DELETE")).code == 200
    assert derivative_files(server, source_path / "other" / "x.jpg") == []
    assert len(derivative_files(server, source_path / "sample" / "red.jpg")) == 1
    assert server.service.hot(other) is None and server.service.hot(RED) is not None
    assert await decoded_entries(server) == red_decodes

    response = await purge(http_client, base_url, body={"all": True})
    assert response.code == 200
    assert json.loads(response.body)["derivatives"] == 1
    assert server.service.hot(RED) is None
    assert await decoded_entries(server) == 0
    assert len(server.derivatives) == 0


async def test_health_counts_purges(http_client: AsyncHTTPClient, base_url: str) -> None:
    await purge(http_client, base_url, "?all=1")
    health = json.loads((await http_client.fetch(f"{base_url}/health")).body)
    assert health["purge"] == {"received": 1, "followed": 0}


async def test_purging_a_page_purges_the_whole_document(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path
) -> None:
    scan = pdf_pages(source_path / "sample" / "scan.pdf")
    pages = [f"/iiif/3/scan.pdf%3B{n}/full/40,/0/default.png" for n in (1, 2)]
    for path in pages:
        assert (await http_client.fetch(base_url + path)).code == 200
    await server.derivatives.flush()
    assert len(derivative_files(server, scan)) == 2

    response = await purge(http_client, base_url, "?identifier=scan.pdf%3B2")

    assert json.loads(response.body)["purged"] == ["sample:scan.pdf"]
    assert derivative_files(server, scan) == []
    assert all(server.service.hot(path) is None for path in pages)
    assert await decoded_entries(server) == 0
