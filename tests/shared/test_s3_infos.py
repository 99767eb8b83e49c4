"""Infos of s3 objects shared through a real Redis: a node does not read or probe an
object another node described; a replaced object is probed again; Redis down or a
purge: probed here, as without sharing."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging.probe import MoreBytes, probe_ranges
from iiif_server.shared.infos import SharedInfos
from iiif_server.shared.keys import SharedNames
from iiif_server.shared.redis_link import RedisLink
from iiif_server.sources.registry import SourceRegistry
from iiif_server.sources.s3 import HEADER_BYTES, TIP_BYTES
from iiif_server.sources.s3_client import S3Client
from tests import s3store
from tests.conftest import make_settings
from tests.live import free_port
from tests.sources.conftest import s3_type

pytestmark = pytest.mark.gen_test(timeout=60)


@dataclass
class Node:
    registry: SourceRegistry
    shared: SharedInfos
    link: RedisLink
    probes: list[int | None] = field(default_factory=list)

    @property
    def client(self) -> S3Client:
        source = self.registry.s3_source("museum")
        assert source is not None
        return source.client

    async def describe(self, name: str) -> ImageInfo:
        peeked = await self.registry.peek(self.registry.parse(f"museum:{name}"))
        assert peeked.info is not None
        return peeked.info


def make_node(
    tmp_path: Path, s3: s3store.S3Store, prefix: str, redis: str, made: list[Node]
) -> Node:
    """A node of its own folders (as on another machine) sharing `redis`."""
    root = tmp_path / f"node{len(made)}"
    source_path = root / "sources"
    source_path.mkdir(parents=True)
    settings = make_settings(
        root,
        source_path,
        types={"museum": s3_type("museum", s3.endpoint_url, prefix)},
        default_type=None,
    )
    link = RedisLink(redis)
    shared = SharedInfos(link, SharedNames(source_path, settings.cache_path))
    probes: list[int | None] = []

    async def probe(
        ranges: Sequence[tuple[int, bytes]], size: int, page: int | None
    ) -> ImageInfo | MoreBytes:
        probes.append(page)
        return await asyncio.to_thread(probe_ranges, ranges, size, 10**9, page)

    node = Node(SourceRegistry(settings, None, probe, shared), shared, link, probes)
    made.append(node)
    return node


async def close(made: list[Node]) -> None:
    for node in made:
        await node.link.close()


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def put(s3: s3store.S3Store, key: str, body: bytes) -> None:
    s3.client().put_object(Bucket=s3store.BUCKET, Key=key, Body=body)


async def test_a_node_neither_reads_nor_probes_an_object_another_described(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, redis_url: str
) -> None:
    body = jpeg(1800, 1200)
    assert len(body) > 4 * HEADER_BYTES
    put(s3, f"{prefix}inv/big.jpg", body)
    made: list[Node] = []
    try:
        a = make_node(tmp_path, s3, prefix, redis_url, made)
        b = make_node(tmp_path, s3, prefix, redis_url, made)
        info = await a.describe("inv/big.jpg")
        assert (info.width, info.height) == (1800, 1200)
        assert a.probes == [None]
        assert await b.describe("inv/big.jpg") == info
        assert b.probes == []
        assert b.client.bytes_received <= TIP_BYTES  # the ETag's one-byte read only
        assert b.shared.hits == 1
        # Replaced (a new ETag): probed again, and the new info shared in turn.
        put(s3, f"{prefix}inv/big.jpg", jpeg(640, 480))
        c = make_node(tmp_path, s3, prefix, redis_url, made)
        replaced = await c.describe("inv/big.jpg")
        assert (replaced.width, replaced.height) == (640, 480)
        assert c.probes == [None]
        d = make_node(tmp_path, s3, prefix, redis_url, made)
        assert await d.describe("inv/big.jpg") == replaced
        assert d.probes == []
    finally:
        await close(made)


async def test_a_purge_forgets_the_shared_info_of_an_object(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, redis_url: str
) -> None:
    put(s3, f"{prefix}p.jpg", jpeg(300, 200))
    made: list[Node] = []
    try:
        a = make_node(tmp_path, s3, prefix, redis_url, made)
        await a.describe("p.jpg")
        source = a.registry.s3_source("museum")
        assert source is not None
        scope = source.purge("p.jpg", files=True)
        assert await a.shared.purge(scope.paths) == 1
        b = make_node(tmp_path, s3, prefix, redis_url, made)
        assert (await b.describe("p.jpg")).width == 300
        assert b.probes == [None]
    finally:
        await close(made)


async def test_with_redis_down_a_node_reads_and_probes_the_header_itself(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    put(s3, f"{prefix}q.jpg", jpeg(1800, 1200))
    put(s3, f"{prefix}r.jpg", jpeg(900, 600))
    made: list[Node] = []
    try:
        node = make_node(tmp_path, s3, prefix, f"redis://127.0.0.1:{free_port()}/0", made)
        assert (await node.describe("q.jpg")).width == 1800
        assert (await node.describe("r.jpg")).width == 900
        assert node.probes == [None, None]
        assert node.client.bytes_received <= 2 * HEADER_BYTES + TIP_BYTES
        assert not node.link.link.up
    finally:
        await close(made)
