"""Image infos shared through a real Redis: probed once for every node."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.iiif.image import ImageInfo
from iiif_server.info_cache import InfoCache
from iiif_server.shared.infos import SharedInfos
from iiif_server.shared.keys import SharedNames
from iiif_server.shared.redis_link import RedisLink
from iiif_server.sources.base import SourceFile
from tests.live import free_port

pytestmark = pytest.mark.gen_test(timeout=30)

INFO = ImageInfo(1200, 900, "JPEG", "RGB", icc_profile=True)


def node(
    tmp_path: Path, url: str, probes: list[str], links: list[RedisLink]
) -> tuple[InfoCache, SharedInfos]:
    links.append(RedisLink(url))
    shared = SharedInfos(links[-1], SharedNames(tmp_path / "sources", tmp_path / "cache"))

    async def probe(source: SourceFile, page: int | None) -> ImageInfo:
        probes.append(str(source.path))
        return INFO

    return InfoCache(16, probe, shared), shared


async def test_a_node_does_not_probe_what_another_probed(tmp_path: Path, redis_url: str) -> None:
    probes: list[str] = []
    links: list[RedisLink] = []
    try:
        await two_nodes(tmp_path, redis_url, probes, links)
    finally:
        for link in links:
            await link.close()


async def two_nodes(
    tmp_path: Path, redis_url: str, probes: list[str], links: list[RedisLink]
) -> None:
    first, _ = node(tmp_path / "a", redis_url, probes, links)
    second, shared = node(tmp_path / "b", redis_url, probes, links)
    source_a = SourceFile(tmp_path / "a" / "sources" / "sample" / "x.jpg", 10, 20)
    source_b = SourceFile(tmp_path / "b" / "sources" / "sample" / "x.jpg", 10, 20)
    assert await first.get(source_a) == INFO
    assert await second.get(source_b) == INFO
    assert probes == [str(source_a.path)]
    assert shared.hits == 1
    # Changed (another identity): probed again.
    assert await second.get(SourceFile(source_b.path, 11, 20)) == INFO
    assert len(probes) == 2
    # Purged: probed again too.
    assert await shared.purge(frozenset({str(source_b.path)})) == 2
    assert await second.get(SourceFile(source_b.path, 12, 20)) == INFO
    assert len(probes) == 3


async def test_without_redis_infos_are_probed_here(tmp_path: Path) -> None:
    probes: list[str] = []
    links: list[RedisLink] = []
    infos, shared = node(tmp_path, f"redis://127.0.0.1:{free_port()}/0", probes, links)
    try:
        assert await infos.get(SourceFile(tmp_path / "x.jpg", 1, 2)) == INFO
    finally:
        await links[0].close()
    assert probes == [str(tmp_path / "x.jpg")]
    assert shared.misses == 1
