"""Files inside ePubs and zips: a bounded index of open archives, entries read in chunks.

Opening a zip reads its whole central directory (one record per entry).
`ArchiveIndex` keeps the most recently used archives open, keyed by path,
size and mtime, so a preview reader asking for one chapter after another
reads the directory once; a changed file gets a fresh entry and its old one
is closed. The index is bounded in archives and in entries over all of them; the small
entries last read are kept inflated, bounded in bytes.

An entry whose declared size exceeds the limit is refused before a byte is
inflated. If the declared size lies, `zipfile` still stops at it (and the
CRC check fails at the end), so no entry ever inflates past the limit.
"""

from __future__ import annotations

import logging
import os
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO

from ..errors import NotFound, ServerError
from .paths import Located

logger = logging.getLogger(__name__)

_ENCRYPTED = 0x1
_LOCAL_HEADER = 30  # bytes before the name and extra field of a local file header
_SMALL_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
SMALL_ENTRY = 128 * 1024  # entries read whole by `read_small`, packed and unpacked


class EntryTooLarge(ServerError):
    """The file inside the archive is larger than `max_entry_bytes` once decompressed."""

    status = 403


@dataclass(frozen=True)
class Entry:
    archive: Located
    info: zipfile.ZipInfo

    @property
    def size(self) -> int:
        return self.info.file_size

    @property
    def identity(self) -> str:
        """Changes when the archive does; the CRC tells entries of the same name apart."""
        return f"{self.archive.identity}!{self.info.filename}:{self.info.CRC:08x}"


class ArchiveIndex:
    """The central directories of recently used archives, least recently used closed first."""

    def __init__(
        self, max_archives: int = 64, max_entries: int = 500_000, max_small_bytes: int = 16 * 2**20
    ) -> None:
        self.max_archives = max_archives
        self.max_entries = max_entries
        self.max_small_bytes = max_small_bytes
        # Small entries already inflated, by entry identity (archive size and mtime in it).
        self._small: OrderedDict[str, bytes] = OrderedDict()
        self._small_bytes = 0
        self._open: OrderedDict[tuple[str, int, int], zipfile.ZipFile] = OrderedDict()
        self._entries = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._open)

    @property
    def inflated_bytes(self) -> int:
        """Bytes of small entries kept inflated."""
        return self._small_bytes

    def entry(self, archive: Located, name: str, max_bytes: int) -> Entry:
        """The entry `name`; NotFound when absent (or a folder), EntryTooLarge above `max_bytes`."""
        info = self._archive(archive).NameToInfo.get(name)
        if info is None or info.is_dir() or info.flag_bits & _ENCRYPTED:
            raise NotFound("no such file in the archive")
        if info.file_size > max_bytes:
            raise EntryTooLarge(
                f"the file inside the archive is larger than {max_bytes} bytes decompressed"
            )
        return Entry(archive, info)

    def has(self, archive: Located, name: str) -> bool:
        return name in self._archive(archive).NameToInfo

    def open(self, entry: Entry) -> IO[bytes]:
        """A reader of the entry's decompressed bytes (seekable; seeking forward inflates)."""
        archive = self._archive(entry.archive)
        try:
            return archive.open(entry.info)
        except (zipfile.BadZipFile, NotImplementedError, OSError) as error:
            logger.warning("%s: cannot read %s: %s", entry.archive.path, entry.info.filename, error)
            raise NotFound("the file in the archive cannot be read") from None

    def read_small(self, entry: Entry) -> bytes | None:
        """A small entry whole, in one read of the archive (None: stream it with `open`).

        A preview reader's chapter is a few KB: one `pread` and one inflate
        cost less than `zipfile`'s reader with its seeks and buffers, and the
        most recently read ones are kept inflated (bounded in bytes).
        """
        info = entry.info
        if max(info.compress_size, info.file_size) > SMALL_ENTRY or (
            info.compress_type not in _SMALL_METHODS
        ):
            return None
        key = entry.identity
        data = self._small.get(key)
        if data is not None:
            self._small.move_to_end(key)
            return data
        data = self._inflate(entry)
        self._small[key] = data
        self._small_bytes += len(data)
        while self._small_bytes > self.max_small_bytes:
            self._small_bytes -= len(self._small.popitem(last=False)[1])
        return data

    def _inflate(self, entry: Entry) -> bytes:
        info = entry.info
        archive = self._archive(entry.archive)
        assert archive.fp is not None
        fd = archive.fp.fileno()
        wanted = _LOCAL_HEADER + len(info.filename.encode()) + 256 + info.compress_size
        data = os.pread(fd, wanted, info.header_offset)
        if len(data) < _LOCAL_HEADER or data[:4] != b"PK\x03\x04":
            raise NotFound("the file in the archive cannot be read")
        name_length, extra_length = struct.unpack_from("<HH", data, 26)
        start = _LOCAL_HEADER + name_length + extra_length
        if len(data) < start + info.compress_size:
            data = os.pread(fd, start + info.compress_size, info.header_offset)
        raw = data[start : start + info.compress_size]
        if info.compress_type == zipfile.ZIP_DEFLATED:
            # Never more than the declared size, whatever the compressed data says.
            raw = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, info.file_size + 1)
        if len(raw) != info.file_size or zlib.crc32(raw) != info.CRC:
            raise NotFound("the file in the archive is damaged")
        return raw

    def close(self) -> None:
        while self._open:
            self._open.popitem(last=False)[1].close()
        self._entries = 0
        self._small.clear()
        self._small_bytes = 0

    def _archive(self, archive: Located) -> zipfile.ZipFile:
        key = (archive.path, archive.size, archive.mtime_ns)
        opened = self._open.get(key)
        if opened is not None:
            self._open.move_to_end(key)
            self.hits += 1
            return opened
        self.misses += 1
        try:
            opened = zipfile.ZipFile(archive.path)
        except (zipfile.BadZipFile, OSError, ValueError):
            raise NotFound("not a readable archive") from None
        for stale in [k for k in self._open if k[0] == archive.path]:
            self._drop(stale)  # the file changed: its old directory is of no use
        self._open[key] = opened
        self._entries += len(opened.NameToInfo)
        while len(self._open) > 1 and (
            len(self._open) > self.max_archives or self._entries > self.max_entries
        ):
            self._drop(next(iter(self._open)))
        return opened

    def _drop(self, key: tuple[str, int, int]) -> None:
        # Readers still streaming keep the file open: zipfile counts them.
        dropped = self._open.pop(key)
        self._entries -= len(dropped.NameToInfo)
        dropped.close()
