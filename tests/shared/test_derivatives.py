"""The shared derivative tier against a real store (SeaweedFS)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iiif_server.shared.config import parse_shared_cache
from iiif_server.shared.derivatives import SharedDerivatives
from iiif_server.shared.keys import SharedNames
from tests import s3store
from tests.live import free_port

pytestmark = pytest.mark.gen_test(timeout=60)


def tier(tmp_path: Path, endpoint: str, prefix: str) -> SharedDerivatives:
    settings = parse_shared_cache(
        {
            "url": f"s3://{s3store.BUCKET}/{prefix}",
            "endpoint_url": endpoint,
            "region": s3store.REGION,
            "access_key_id": s3store.ACCESS_KEY_ID,
            "secret_access_key": s3store.SECRET_ACCESS_KEY,
        }
    )
    assert settings is not None  # a url was given: a shared tier
    return SharedDerivatives(settings, SharedNames(tmp_path / "sources", tmp_path / "cache"))


def keys(s3: s3store.S3Store, prefix: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=s3store.BUCKET, Prefix=prefix)
    return [entry["Key"] for entry in listed.get("Contents", [])]


async def test_what_one_node_writes_another_reads(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    writer, reader = (
        tier(tmp_path / "a", s3.endpoint_url, prefix),
        tier(tmp_path / "b", s3.endpoint_url, prefix),
    )
    path_a = str(tmp_path / "a" / "sources" / "sample" / "x.jpg")
    path_b = str(tmp_path / "b" / "sources" / "sample" / "x.jpg")
    assert await reader.get("sample", path_b, f"2|{path_b}|1|full") is None
    writer.put_soon("sample", path_a, f"2|{path_a}|1|full", b"derivative")
    await writer.flush()
    assert await reader.get("sample", path_b, f"2|{path_b}|1|full") == b"derivative"
    assert (reader.hits, reader.misses, writer.writes) == (1, 1, 1)
    writer.close()
    reader.close()


async def test_a_purge_deletes_one_sources_objects_or_a_types(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    shared = tier(tmp_path, s3.endpoint_url, prefix)
    x, y = (str(tmp_path / "sources" / "sample" / name) for name in ("x.jpg", "y.jpg"))
    for path, key in ((x, "1"), (x, "2"), (y, "1")):
        shared.put_soon("sample", path, f"{path}|{key}", b"data")
    shared.put_soon("other", x, f"{x}|1", b"data")
    await shared.flush()
    assert len(keys(s3, prefix)) == 4
    assert await shared.purge("sample", [x]) == 2
    assert await shared.get("sample", x, f"{x}|1") is None
    assert await shared.get("sample", y, f"{y}|1") == b"data"
    assert await shared.purge("sample", None) == 1
    assert await shared.purge(None, None) == 1
    assert keys(s3, prefix) == []
    shared.close()


async def test_an_unreachable_store_is_a_quick_miss_and_a_warning(
    prefix: str, tmp_path: Path
) -> None:
    shared = tier(tmp_path, f"http://127.0.0.1:{free_port()}", prefix)
    started = time.monotonic()
    path = str(tmp_path / "x.jpg")
    assert await shared.get("sample", path, f"{path}|1") is None
    assert await shared.get("sample", path, f"{path}|1") is None  # not asked: pausing
    assert time.monotonic() - started < 2.0
    assert shared.health()["status"] == "unavailable"
    assert shared.link.errors == 1
    assert await shared.purge(None, None) is None
    shared.close()
