"""The archive index: entries, refusals without inflating, a bounded set of open archives."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest

from iiif_server.errors import NotFound
from iiif_server.resources.archives import ArchiveIndex, EntryTooLarge
from iiif_server.resources.paths import Located, locate


def make_zip(path: Path, entries: dict[str, bytes]) -> Located:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return locate(os.path.realpath(path.parent), (path.name,))


def test_entries_are_read_in_chunks_and_seek(tmp_path: Path) -> None:
    located = make_zip(tmp_path / "a.epub", {"OEBPS/ch1.xhtml": b"0123456789" * 1000})
    index = ArchiveIndex()
    entry = index.entry(located, "OEBPS/ch1.xhtml", 10**6)
    assert entry.size == 10_000
    with index.open(entry) as reader:
        reader.seek(9995)
        assert reader.read(100) == b"56789"
    for missing in ("OEBPS/", "OEBPS/none.xhtml", "ch1.xhtml"):
        with pytest.raises(NotFound):
            index.entry(located, missing, 10**6)


def test_an_entry_above_the_limit_is_refused(tmp_path: Path) -> None:
    located = make_zip(tmp_path / "a.zip", {"big.bin": bytes(5000)})
    with pytest.raises(EntryTooLarge) as raised:
        ArchiveIndex().entry(located, "big.bin", 4999)
    assert raised.value.status == 403


def lying_zip(folder: Path) -> Located:
    """A zip whose `bomb.txt` inflates to 1 MB while its directory says 100 bytes."""
    path = folder / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.txt", bytes(10**6))
    data = bytearray(path.read_bytes())
    # The central directory's uncompressed size is at offset 24 of its record.
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, 100)
    path.write_bytes(bytes(data))
    return locate(str(folder), ("liar.zip",))


def test_an_entry_whose_header_lies_never_inflates_past_it(tmp_path: Path) -> None:
    index = ArchiveIndex()
    entry = index.entry(lying_zip(tmp_path), "bomb.txt", 1000)
    received = 0
    with index.open(entry) as reader, pytest.raises(zipfile.BadZipFile):  # CRC, at the end
        while chunk := reader.read(4096):
            received += len(chunk)
    assert received <= 100


def test_the_directory_is_read_once_and_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.epub"
    index = ArchiveIndex()
    located = make_zip(path, {"a.txt": b"a"})
    for _ in range(3):
        index.entry(located, "a.txt", 100)
    assert (index.hits, index.misses, len(index)) == (2, 1, 1)
    make_zip(path, {"b.txt": b"b"})
    os.utime(path, ns=(located.mtime_ns + 10**9, located.mtime_ns + 10**9))
    changed = locate(str(tmp_path), ("a.epub",))
    assert index.entry(changed, "b.txt", 100).size == 1
    assert (index.misses, len(index)) == (2, 1)  # the stale directory was closed


def test_the_index_is_bounded_in_archives_and_entries(tmp_path: Path) -> None:
    index = ArchiveIndex(max_archives=3, max_entries=25)
    archives = [
        make_zip(tmp_path / f"{n}.zip", {f"{i}.txt": b"x" for i in range(10)}) for n in range(5)
    ]
    for located in archives:
        index.entry(located, "0.txt", 100)
    assert len(index) == 2  # 3 archives would hold 30 entries
    index.close()
    assert len(index) == 0


def test_a_file_that_is_not_a_zip_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "fake.epub").write_bytes(b"not a zip at all")
    with pytest.raises(NotFound):
        ArchiveIndex().entry(locate(str(tmp_path), ("fake.epub",)), "a", 100)


def test_small_entries_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.epub"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("stored.txt", b"plain", compress_type=zipfile.ZIP_STORED)
        archive.writestr("ch1.xhtml", b"<p>chapter</p>" * 500, compress_type=zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("long-extra.txt")
        info.extra = struct.pack("<HH", 0xCAFE, 1000) + bytes(1000)  # past the first read
        archive.writestr(info, b"extra", compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("big.bin", os.urandom(200_000), compress_type=zipfile.ZIP_STORED)
    index = ArchiveIndex()
    located = locate(str(tmp_path), ("a.epub",))

    def small(name: str) -> bytes | None:
        return index.read_small(index.entry(located, name, 10**6))

    assert small("stored.txt") == b"plain"
    assert small("ch1.xhtml") == b"<p>chapter</p>" * 500
    assert small("long-extra.txt") == b"extra"
    assert small("big.bin") is None  # streamed instead


def test_a_lying_small_entry_is_refused(tmp_path: Path) -> None:
    index = ArchiveIndex()
    with pytest.raises(NotFound):
        index.read_small(index.entry(lying_zip(tmp_path), "bomb.txt", 1000))


def test_a_damaged_small_entry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", b"hello world", compress_type=zipfile.ZIP_STORED)
    path.write_bytes(path.read_bytes().replace(b"hello world", b"jello world"))
    index = ArchiveIndex()
    with pytest.raises(NotFound):
        index.read_small(index.entry(locate(str(tmp_path), ("a.zip",)), "a.txt", 1000))


def test_small_entries_kept_inflated_are_bounded_in_bytes(tmp_path: Path) -> None:
    chapters = {f"ch{n}.xhtml": bytes([n]) * 1000 for n in range(10)}
    located = make_zip(tmp_path / "a.epub", chapters)
    index = ArchiveIndex(max_small_bytes=3500)
    for _ in range(2):
        for name, data in chapters.items():
            assert index.read_small(index.entry(located, name, 10**6)) == data
            assert index.inflated_bytes <= 3500
    assert index.inflated_bytes == 3000
