"""A deep-zoom session's tiles in one shared object (bundles.py), against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.shared import bundles
from iiif_server.shared.bundles import FOLDER, decode, encode
from tests import s3store
from tests.shared.test_derivatives import keys, tier

pytestmark = pytest.mark.gen_test(timeout=60)


def test_a_bundle_gives_back_its_entries_and_nothing_of_a_cut_or_foreign_one() -> None:
    entries = [("sample/ab/1", b"one"), ("sample/ab/\u00e9", b""), ("x", b"\x00" * 1000)]
    blob = encode(entries)
    assert list(decode(blob)) == entries
    assert list(decode(blob[:-1])) == entries[:2]  # a cut-off end: the complete entries
    assert list(decode(b"<Error>not a bundle</Error>")) == []


def delete_tiles(s3: s3store.S3Store, prefix: str) -> None:
    """Every object but the bundles: what a reader then gets came from a bundle."""
    client = s3.client()
    for key in keys(s3, prefix):
        if f"/{FOLDER}" not in key:
            client.delete_object(Bucket=s3store.BUCKET, Key=key)


async def test_a_sessions_tiles_are_read_with_one_bundle(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    writer, reader = (tier(tmp_path / n, s3.endpoint_url, prefix) for n in ("a", "b"))
    paths = [str(tmp_path / n / "sources" / "sample" / "x.jpg") for n in ("a", "b")]
    for n in range(3):
        writer.put_soon("sample", paths[0], f"2|{paths[0]}|{n}", b"tile %d" % n, session=True)
    writer.put_soon("sample", paths[0], f"2|{paths[0]}|single", b"alone")  # no session
    await writer.flush()
    assert writer.health()["bundles_written"] == 1
    assert len(keys(s3, prefix)) == 5  # each tile on its own too
    delete_tiles(s3, prefix)
    for n in range(3):
        tile = await reader.get("sample", paths[1], f"2|{paths[1]}|{n}", session=True)
        assert tile == b"tile %d" % n
    assert await reader.get("sample", paths[1], f"2|{paths[1]}|single", session=True) is None
    assert (reader.health()["bundles_read"], reader.hits) == (1, 3)
    # Given once: from then on the node serves it from its own disk.
    assert await reader.get("sample", paths[1], f"2|{paths[1]}|0", session=True) is None
    writer.close()
    reader.close()


async def test_nothing_loaded_is_served_after_a_purge_and_purges_delete_bundles(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    writer, reader = (tier(tmp_path / n, s3.endpoint_url, prefix) for n in ("a", "b"))
    paths = [str(tmp_path / n / "sources" / "sample" / "x.jpg") for n in ("a", "b")]
    writer.put_soon("sample", paths[0], f"2|{paths[0]}|1", b"tile", session=True)
    writer.put_soon("sample", paths[0], f"2|{paths[0]}|2", b"tile", session=True)
    await writer.flush()
    assert await reader.get("sample", paths[1], f"2|{paths[1]}|1", session=True) == b"tile"
    reader.bundles.forget()  # a purge reached this node
    assert await writer.purge("sample", [paths[0]]) == 3
    assert keys(s3, prefix) == []
    assert await reader.get("sample", paths[1], f"2|{paths[1]}|2", session=True) is None
    # A session's tiles still waiting to be bundled are dropped by a purge, not written.
    writer.put_soon("sample", paths[0], f"2|{paths[0]}|3", b"tile", session=True)
    writer.bundles.forget()
    await writer.flush()
    assert [key for key in keys(s3, prefix) if f"/{FOLDER}" in key] == []
    writer.close()
    reader.close()


async def test_a_session_start_reads_the_bundles_and_says_how_many_tiles_they_hold(
    s3: s3store.S3Store, prefix: str, tmp_path: Path
) -> None:
    writer, reader = (tier(tmp_path / n, s3.endpoint_url, prefix) for n in ("a", "b"))
    paths = [str(tmp_path / n / "sources" / "sample" / "x.jpg") for n in ("a", "b")]
    other = str(tmp_path / "b" / "sources" / "sample" / "y.jpg")
    for n in range(2):
        writer.put_soon("sample", paths[0], f"2|{paths[0]}|{n}", b"tile", session=True)
    await writer.flush()
    delete_tiles(s3, prefix)
    assert await reader.prefetch("sample", other) == 0  # nothing bundled: it will render
    assert await reader.prefetch("sample", paths[1]) == 2
    assert await reader.get("sample", paths[1], f"2|{paths[1]}|1", session=True) == b"tile"
    assert reader.health()["bundles_read"] == 1  # read once, at the session's start
    writer.close()
    reader.close()


async def test_tiles_beyond_the_waiting_bound_are_shared_alone(
    s3: s3store.S3Store, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundles, "MAX_WAITING_BYTES", 10)
    shared = tier(tmp_path, s3.endpoint_url, prefix)
    path = str(tmp_path / "sources" / "sample" / "x.jpg")
    for n in range(3):
        shared.put_soon("sample", path, f"2|{path}|{n}", b"12345", session=True)
    await shared.flush()
    bundled = [key for key in keys(s3, prefix) if f"/{FOLDER}" in key]
    assert len(bundled) == 1 and len(keys(s3, prefix)) == 4
    blob = s3.client().get_object(Bucket=s3store.BUCKET, Key=bundled[0])["Body"].read()
    assert len(list(decode(blob))) == 2
    shared.put_soon("sample", path, f"2|{path}|3", b"12345", session=True)  # room again
    await shared.flush()
    assert len([key for key in keys(s3, prefix) if f"/{FOLDER}" in key]) == 2
    shared.close()
