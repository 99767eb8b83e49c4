"""The `s3` source against a real store (SeaweedFS): header reads, downloads, failures."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from iiif_server.config import TypeSettings
from iiif_server.errors import (
    BadRequest,
    NotFound,
    ServerError,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from iiif_server.sources.registry import SourceRegistry
from iiif_server.sources.s3 import HEADER_BYTES, MAX_HEADER_BYTES, Peeked
from iiif_server.sources.s3_client import RETRIES, S3Client
from tests import s3store
from tests.conftest import make_settings
from tests.sources.conftest import s3_type
from tests.sources.upstream import Reply, Upstream

pytestmark = pytest.mark.gen_test(timeout=60)


def encoded(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int) -> Image.Image:
    return Image.effect_noise((width, height), 60).convert("RGB")


def make_registry(tmp_path: Path, source_path: Path, *types: TypeSettings) -> SourceRegistry:
    settings = make_settings(
        tmp_path,
        source_path,
        types={t.name: t for t in types},
        default_type=None,
        negative_cache_ttl=0.0,
    )
    return SourceRegistry(settings)


def client(registry: SourceRegistry, type_name: str = "museum") -> S3Client:
    source = registry.s3_source(type_name)
    assert source is not None
    return source.client


@pytest.fixture
def museum(s3: s3store.S3Store, prefix: str, tmp_path: Path, source_path: Path) -> SourceRegistry:
    return make_registry(tmp_path, source_path, s3_type("museum", s3.endpoint_url, prefix))


def put(s3: s3store.S3Store, key: str, body: bytes) -> None:
    s3.client().put_object(Bucket=s3store.BUCKET, Key=key, Body=body)


async def peek(registry: SourceRegistry, identifier: str) -> Peeked:
    return await registry.peek(registry.parse(identifier))


async def failure(call: Any) -> ServerError:
    with pytest.raises(ServerError) as caught:
        await call
    return caught.value


async def test_info_of_an_object_reads_its_header_only(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    body = encoded(noise(1800, 1200), quality=95)
    assert len(body) > 10 * HEADER_BYTES
    put(s3, f"{prefix}inv/big.jpg", body)
    peeked = await peek(museum, "museum:inv/big.jpg")
    assert peeked.info is not None
    assert (peeked.info.width, peeked.info.height, peeked.info.format) == (1800, 1200, "JPEG")
    assert peeked.file.size == len(body)
    assert client(museum).bytes_received <= HEADER_BYTES
    assert not peeked.file.path.exists()  # nothing downloaded
    # Asked again: remembered, no second read.
    assert await peek(museum, "museum:inv/big.jpg") == peeked
    assert client(museum).bytes_received <= HEADER_BYTES


async def test_a_header_longer_than_the_first_read_is_read_in_more_ranges(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    # A large ICC profile (APP2 segments) pushes the frame header past the first read.
    body = encoded(noise(1500, 1000), icc_profile=os.urandom(3 * HEADER_BYTES), quality=95)
    put(s3, f"{prefix}icc.jpg", body)
    peeked = await peek(museum, "museum:icc.jpg")
    assert peeked.info is not None
    assert (peeked.info.width, peeked.info.height) == (1500, 1000)
    assert 3 * HEADER_BYTES < client(museum).bytes_received < len(body) // 2


async def test_a_tiff_directory_at_the_end_is_read_from_there(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    # libtiff writes the strips first and the image file directory after them.
    body = encoded(noise(1000, 800), "TIFF", compression="tiff_lzw")
    put(s3, f"{prefix}end.tif", body)
    peeked = await peek(museum, "museum:end.tif")
    assert peeked.info is not None
    assert (peeked.info.width, peeked.info.height, peeked.info.format) == (1000, 800, "TIFF")
    assert client(museum).bytes_received < 3 * HEADER_BYTES < len(body)


async def test_a_header_read_whole_downloads_the_object_once(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    body = encoded(noise(1400, 1000), "WEBP", quality=100)  # Pillow parses a WebP whole
    assert len(body) > MAX_HEADER_BYTES
    put(s3, f"{prefix}whole.webp", body)
    peeked = await peek(museum, "museum:whole.webp")
    assert peeked.info is None and peeked.file.path.read_bytes() == body
    assert client(museum).bytes_received <= HEADER_BYTES + len(body)  # no more ranges


async def test_image_work_downloads_the_object_once(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry, source_path: Path
) -> None:
    body = encoded(noise(600, 400))
    put(s3, f"{prefix}a.jpg", body)
    identifier = museum.parse("museum:a.jpg")
    first = await museum.resolve(identifier)
    second = await museum.resolve(identifier)
    assert first == second
    assert first.path.read_bytes() == body
    assert source_path / "museum" in first.path.parents
    assert client(museum).bytes_received == len(body)
    # Once downloaded, info.json is probed from the local file: no header read.
    assert await peek(museum, "museum:a.jpg") == Peeked(first)
    assert client(museum).bytes_received == len(body)


async def test_concurrent_requests_share_one_header_read_and_one_download(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    body = encoded(noise(800, 600))
    put(s3, f"{prefix}b.jpg", body)
    peeks = await asyncio.gather(*(peek(museum, "museum:b.jpg") for _ in range(5)))
    assert len(set(peeks)) == 1
    after_peeks = client(museum).bytes_received
    assert after_peeks <= HEADER_BYTES
    identifier = museum.parse("museum:b.jpg")
    files = await asyncio.gather(*(museum.resolve(identifier) for _ in range(5)))
    assert len(set(files)) == 1
    assert client(museum).bytes_received - after_peeks == len(body)


async def test_a_missing_object_is_404_and_nothing_is_stored(
    museum: SourceRegistry, source_path: Path
) -> None:
    assert isinstance(await failure(peek(museum, "museum:none.jpg")), NotFound)
    error = await failure(museum.resolve(museum.parse("museum:none.jpg")))
    assert isinstance(error, NotFound)
    assert len(museum.store) == 0


@pytest.mark.parametrize("name", ["../secret.jpg", "/secret.jpg", "a//b.jpg", "./b.jpg", "a/.."])
async def test_names_cannot_leave_the_prefix(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry, name: str
) -> None:
    put(s3, "secret.jpg", encoded(noise(40, 30)))
    put(s3, f"{prefix}a/b.jpg", encoded(noise(40, 30)))
    assert isinstance(await failure(peek(museum, f"museum:{name}")), NotFound)
    identifier = museum.parse(f"museum:{name}")
    assert isinstance(await failure(museum.resolve(identifier)), NotFound)
    assert client(museum).bytes_received == 0  # refused before any request


async def test_a_nul_in_a_name_is_a_bad_request(museum: SourceRegistry) -> None:
    assert isinstance(await failure(peek(museum, "museum:a\x00.jpg")), BadRequest)


async def test_a_name_may_hold_folders_and_any_text(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    put(s3, f"{prefix}inv/caf\u00e9 1+2.png", encoded(noise(50, 40), "PNG"))
    peeked = await peek(museum, "museum:inv/caf\u00e9 1+2.png")
    assert peeked.info is not None and peeked.info.format == "PNG"


async def test_an_unreachable_store_is_502_and_nothing_is_remembered(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, source_path: Path
) -> None:
    proxy = s3store.CountingProxy(int(s3.endpoint_url.rsplit(":", 1)[1]))  # not started yet
    registry = make_registry(tmp_path, source_path, s3_type("museum", proxy.url, prefix))
    put(s3, f"{prefix}c.jpg", encoded(noise(64, 48)))
    error = await failure(peek(registry, "museum:c.jpg"))
    assert type(error) is UpstreamError and error.status == 502
    error = await failure(registry.resolve(registry.parse("museum:c.jpg")))
    assert type(error) is UpstreamError
    assert len(registry.store) == 0
    await proxy.start()  # the store is back: the next request reaches it
    try:
        peeked = await peek(registry, "museum:c.jpg")
        assert peeked.info is not None and peeked.info.width == 64
        assert (await registry.resolve(registry.parse("museum:c.jpg"))).size > 0
    finally:
        await proxy.close()


async def test_a_store_that_does_not_answer_is_504(
    upstream: Upstream, prefix: str, tmp_path: Path, source_path: Path
) -> None:
    museum = s3_type("museum", upstream.url(""), prefix, timeout=0.3)
    registry = make_registry(tmp_path, source_path, museum)
    upstream.routes[f"/{s3store.BUCKET}/{prefix}d.jpg"] = Reply(gate=asyncio.Event())
    error = await failure(peek(registry, "museum:d.jpg"))
    assert isinstance(error, UpstreamTimeout) and error.status == 504
    assert len(upstream.requests) == 1  # a timeout is not retried


async def test_store_errors_are_retried_a_few_times_then_502(
    upstream: Upstream, prefix: str, tmp_path: Path, source_path: Path
) -> None:
    registry = make_registry(tmp_path, source_path, s3_type("museum", upstream.url(""), prefix))
    upstream.routes[f"/{s3store.BUCKET}/{prefix}e.jpg"] = Reply(503, b"<Code>SlowDown</Code>")
    error = await failure(registry.resolve(registry.parse("museum:e.jpg")))
    assert type(error) is UpstreamError
    assert len(upstream.requests) == 1 + len(RETRIES)
    assert len(registry.store) == 0


async def test_requests_are_signed_and_wrong_keys_are_502(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, source_path: Path
) -> None:
    put(s3, f"{prefix}f.jpg", encoded(noise(64, 48)))
    wrong = s3_type("museum", s3.endpoint_url, prefix, secret_access_key="not-the-secret")
    registry = make_registry(tmp_path, source_path, wrong)
    error = await failure(peek(registry, "museum:f.jpg"))
    assert type(error) is UpstreamError


async def test_an_object_that_is_no_image_is_502(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    put(s3, f"{prefix}g.jpg", b"plain text, not an image" * 10)
    assert type(await failure(peek(museum, "museum:g.jpg"))) is UpstreamError
    error = await failure(museum.resolve(museum.parse("museum:g.jpg")))
    assert type(error) is UpstreamError
    assert len(museum.store) == 0


async def test_a_replaced_object_is_seen_after_the_ttl(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, source_path: Path
) -> None:
    ttl = 0.5
    registry = make_registry(
        tmp_path, source_path, s3_type("museum", s3.endpoint_url, prefix, ttl=ttl)
    )
    old, new = encoded(noise(64, 48)), encoded(noise(80, 60))
    put(s3, f"{prefix}h.jpg", old)
    identifier = registry.parse("museum:h.jpg")
    assert (await registry.resolve(identifier)).path.read_bytes() == old
    put(s3, f"{prefix}h.jpg", new)
    assert (await registry.resolve(identifier)).path.read_bytes() == old  # within the ttl
    await asyncio.sleep(ttl * 1.5)
    assert (await registry.resolve(identifier)).path.read_bytes() == new
    peeked = await peek(registry, "museum:h.jpg")
    assert peeked.info is None and peeked.file.path.read_bytes() == new


async def test_an_unchanged_object_is_confirmed_not_downloaded_again(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, source_path: Path
) -> None:
    ttl = 0.3
    registry = make_registry(
        tmp_path, source_path, s3_type("museum", s3.endpoint_url, prefix, ttl=ttl)
    )
    body = encoded(noise(300, 200))
    put(s3, f"{prefix}i.jpg", body)
    identifier = registry.parse("museum:i.jpg")
    first = await registry.resolve(identifier)
    await asyncio.sleep(ttl * 1.5)
    assert await registry.resolve(identifier) == first  # a 304: the same file
    assert client(registry).bytes_received == len(body)


async def test_an_object_replaced_while_its_header_is_read_is_503(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    body = encoded(noise(600, 400), icc_profile=os.urandom(2 * HEADER_BYTES))
    put(s3, f"{prefix}j.jpg", body)
    s3_client = client(museum)
    url = s3_client.url_for(f"{prefix}j.jpg")
    first = await s3_client.read_range(url, 0, 10, label="museum:j.jpg")
    put(s3, f"{prefix}j.jpg", encoded(noise(60, 40)))
    with pytest.raises(Unavailable):
        await s3_client.read_range(
            url, 10, 20, label="museum:j.jpg", if_match=first.validators.etag
        )


async def test_a_page_of_a_multi_page_tiff_is_read_from_its_header(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    pages = [noise(300, 200), noise(640, 480), noise(320, 240)]
    body = encoded(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    put(s3, f"{prefix}pages.tif", body)
    largest = await peek(museum, "museum:pages.tif")
    third = await peek(museum, "museum:pages.tif;3")
    assert largest.info is not None and third.info is not None
    assert (largest.info.width, largest.info.page) == (640, 1)
    assert (third.info.width, third.info.page) == (320, 2)
    assert not largest.file.path.exists()
    assert isinstance(await failure(peek(museum, "museum:pages.tif;4")), NotFound)


async def test_a_pdf_is_downloaded_to_be_measured(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    body = encoded(noise(300, 200), "PDF")
    put(s3, f"{prefix}scan.pdf", body)
    peeked = await peek(museum, "museum:scan.pdf;1")
    assert peeked.info is None and peeked.file.path.read_bytes() == body


async def test_a_purge_forgets_header_reads_and_downloads(
    s3: s3store.S3Store, prefix: str, museum: SourceRegistry
) -> None:
    body = encoded(noise(200, 100))
    put(s3, f"{prefix}p.jpg", body)
    peeked = await peek(museum, "museum:p.jpg")
    downloaded = await museum.resolve(museum.parse("museum:p.jpg"))
    scope = museum.purge("museum", "p.jpg", files=True)
    assert scope.matches(str(peeked.file.path)) and not downloaded.path.exists()
    before = client(museum).bytes_received
    assert await peek(museum, "museum:p.jpg") == peeked  # read again from the store
    assert client(museum).bytes_received > before
