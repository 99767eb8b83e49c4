"""The compact read-only index of one scheme's listing: one file, mapped by every front process.

Layout (little-endian), written once by `IndexWriter`, then only read:

    header   128 bytes: magic, ids, records, slots, and where the parts below start
    blocks   zstd-compressed blocks of BLOCK records each; a block is u32 count,
             count u32 record starts, then the records: u8 id length, the id
             (UTF-8), then `mode NUL URL NUL mode NUL URL` (no part holds a NUL)
    starts   u64 file offset of each block, and one past the last
    table    `slots` u64: (top 32 bits of the id's hash << 32) | (record number + 1); 0 is empty
    dict     the zstd dictionary the blocks are compressed with
    meta     JSON: the listing's counts

The table is open addressing with linear probing, at most 3/4 full, keyed by
an 8-byte BLAKE2b of the id (Python's `hash()` differs between processes).
A zstd dictionary trained on the listing's first records holds what records
share (hosts, paths, the shape of ids), so blocks of only 8 records compress
about 4x and a query decompresses one block of about 1 KB in a few
microseconds (zlib needed blocks of 32 for that ratio, and 25 µs a query).
A mapped file is shared through the page cache, so N processes cost it once.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from array import array
from collections.abc import Iterator
from hashlib import blake2b
from pathlib import Path
from typing import Any

import zstandard

MAGIC = b"IIIFLKP3"
BLOCK = 8
TRAINING_RECORDS = 20_000
DICTIONARY_BYTES = 64 * 1024
_HEADER = struct.Struct("<8sQQQQQQQQ")
_HEADER_SIZE = 128  # room for the header to grow
assert _HEADER.size <= _HEADER_SIZE
_U32 = struct.Struct("<I")
_LOW = 0xFFFFFFFF
_MAX_RECORDS = 2**32 - 2


class IndexFull(ValueError):
    """The listing does not fit the index format (more than 4 billion ids)."""


def id_hash(key: bytes) -> int:
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "little")


def _record(key: bytes, urls: list[tuple[str, str]]) -> bytes:
    text = "\0".join([part for pair in urls for part in pair]).encode()
    return bytes((len(key),)) + key + text


def _block(records: list[bytes]) -> bytes:
    starts = array("I", [len(records)])
    position = 0
    for record in records:
        starts.append(position)
        position += len(record)
    return starts.tobytes() + b"".join(records)


def _train(records: list[bytes]) -> bytes:
    """A dictionary for these records; empty when they are too few to train one."""
    try:
        samples: list[bytes | bytearray | memoryview] = list(records)
        return zstandard.train_dictionary(DICTIONARY_BYTES, samples).as_bytes()
    except zstandard.ZstdError:
        return b""


def _dictionary(data: bytes) -> zstandard.ZstdCompressionDict | None:
    return zstandard.ZstdCompressionDict(data) if data else None


def _unpack_record(block: bytes, index: int) -> bytes:
    count = _U32.unpack_from(block)[0]
    data = 4 + 4 * count
    start = data + _U32.unpack_from(block, 4 + 4 * index)[0]
    end = data + _U32.unpack_from(block, 8 + 4 * index)[0] if index + 1 < count else len(block)
    return block[start:end]


def _split_record(record: bytes) -> tuple[bytes, bytes]:
    """A record's id (bytes) and its `mode NUL URL ...` part."""
    return record[1 : 1 + record[0]], record[1 + record[0] :]


def urls_of(text: bytes) -> dict[str, str]:
    """The URLs by mode of a record's stored part (`Index.records`, `Index.stored`)."""
    parts = text.decode().split("\0") if text else []
    return dict(zip(parts[::2], parts[1::2], strict=True))


class IndexWriter:
    """Writes an index file from `(id, [(mode, URL)])` entries; a later duplicate id wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._file.write(bytes(_HEADER_SIZE))
        self._starts = array("Q", [_HEADER_SIZE])
        self._hashes = array("Q")
        self._pending: list[bytes] = []  # records not yet in a block
        self._dictionary: bytes | None = None  # trained once TRAINING_RECORDS are pending
        self._compressor = zstandard.ZstdCompressor()

    def add(self, identifier: str, urls: list[tuple[str, str]]) -> None:
        key = identifier.encode()
        if len(self._hashes) >= _MAX_RECORDS:
            raise IndexFull("the listing has too many ids for the index")
        self._hashes.append(id_hash(key))
        self._pending.append(_record(key, urls))
        if self._dictionary is None:
            if len(self._pending) >= TRAINING_RECORDS:
                self._flush_blocks()
        elif len(self._pending) == BLOCK:
            self._flush_blocks()

    def _flush_blocks(self) -> None:
        if self._dictionary is None:
            self._dictionary = _train(self._pending)
            self._compressor = zstandard.ZstdCompressor(
                level=3, dict_data=_dictionary(self._dictionary), write_dict_id=False
            )
        for first in range(0, len(self._pending), BLOCK):
            packed = self._compressor.compress(_block(self._pending[first : first + BLOCK]))
            self._file.write(packed)
            self._starts.append(self._starts[-1] + len(packed))
        self._pending.clear()

    def finish(self, counts: dict[str, Any]) -> int:
        """Write the block starts, table and meta, fsync and close; the number of distinct ids."""
        if self._pending or self._dictionary is None:
            self._flush_blocks()
        self._file.flush()
        starts_offset = self._starts[-1]
        self._file.write(self._starts.tobytes())
        table_offset = starts_offset + 8 * len(self._starts)
        slots = max(8, len(self._hashes) * 4 // 3 + 1)
        table, duplicates = self._table(slots)
        self._file.write(table.tobytes())
        del table
        ids = len(self._hashes) - duplicates
        dictionary_offset = table_offset + 8 * slots
        assert self._dictionary is not None
        self._file.write(self._dictionary)
        meta = json.dumps({"counts": {**counts, "ids": ids}}).encode()
        meta_offset = dictionary_offset + len(self._dictionary)
        self._file.write(meta)
        self._file.seek(0)
        offsets = (starts_offset, table_offset, dictionary_offset, meta_offset)
        self._file.write(_HEADER.pack(MAGIC, ids, len(self._hashes), slots, *offsets, len(meta)))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return ids

    def _table(self, slots: int) -> tuple[array[int], int]:
        table = array("Q", bytes(8 * slots))
        duplicates = 0
        with self.path.open("rb") as written:
            blocks = mmap.mmap(written.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                for number, hashed in enumerate(self._hashes):
                    tag = hashed >> 32
                    slot = hashed % slots
                    while True:
                        current = table[slot]
                        if current == 0:
                            break
                        if current >> 32 == tag and self._same_id(blocks, current, number):
                            duplicates += 1  # the later entry replaces the earlier
                            break
                        slot = slot + 1 if slot + 1 < slots else 0
                    table[slot] = tag << 32 | (number + 1)
            finally:
                blocks.close()
        return table, duplicates

    def _same_id(self, blocks: mmap.mmap, current: int, number: int) -> bool:
        assert self._dictionary is not None
        decompressor = zstandard.ZstdDecompressor(dict_data=_dictionary(self._dictionary))

        def key(number: int) -> bytes:
            block, index = divmod(number, BLOCK)
            raw = decompressor.decompress(blocks[self._starts[block] : self._starts[block + 1]])
            return _split_record(_unpack_record(raw, index))[0]

        return key((current & _LOW) - 1) == key(number)

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class CorruptIndex(ValueError):
    """The file is not an index this code wrote (or it was cut short)."""


class Index:
    """One index file, mapped read-only: a few probes of the table, one block decompressed."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as file:
            stat = os.fstat(file.fileno())
            self.identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stat.st_size < _HEADER_SIZE:
                raise CorruptIndex(f"{path}: too short for an index")
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        magic, self.ids, records, self._slots, starts, table, dictionary, meta, length = (
            _HEADER.unpack_from(self._map)
        )
        blocks = -(-records // BLOCK)
        if (
            magic != MAGIC
            or meta + length != stat.st_size
            or not table + 8 * self._slots <= dictionary <= meta
            or starts + 8 * (blocks + 1) != table
        ):
            self._map.close()
            raise CorruptIndex(f"{path}: not a lookup index, or cut short")
        self.meta: dict[str, Any] = json.loads(self._map[meta : meta + length])
        trained = _dictionary(self._map[dictionary:meta])
        # One decompressor, reused: queries run one at a time on the event loop.
        self._decompress = zstandard.ZstdDecompressor(dict_data=trained).decompress
        view = memoryview(self._map)
        self._starts = view[starts:table].cast("Q")
        self._table = view[table : table + 8 * self._slots].cast("Q")
        view.release()
        # The block decompressed last: ids asked for in listing order (a report comparing
        # two listings) share it eight at a time.
        self._last_block: tuple[int, bytes] = (-1, b"")

    def lookup(self, identifier: str) -> dict[str, str] | None:
        """Every URL of `identifier` by mode, or None when the listing does not have it."""
        # An id from a URL may hold a lone surrogate: it matches nothing, and must not raise.
        found = self._find(identifier.encode("utf-8", "surrogatepass"))
        return urls_of(found[1]) if found is not None else None

    def _find(self, key: bytes) -> tuple[int, bytes] | None:
        """The record number of `key`, and its `mode NUL URL ...` part."""
        # The hot path of every query: one function, few calls.
        hashed = id_hash(key)
        tag = hashed >> 32
        table = self._table
        slots = self._slots
        slot = hashed % slots
        while True:
            current: int = table[slot]
            if current == 0:
                return None
            if current >> 32 == tag:
                number = (current & _LOW) - 1
                block, index = divmod(number, BLOCK)
                record = _unpack_record(self._block(block), index)
                if record[1 : 1 + record[0]] == key and record[0] == len(key):
                    return number, record[1 + record[0] :]
            slot = slot + 1 if slot + 1 < slots else 0

    def url(self, identifier: str, mode: str) -> tuple[bool, str | None]:
        """(the listing has the id, its URL for `mode` or None)."""
        found = self._find(identifier.encode("utf-8", "surrogatepass"))
        if found is None:
            return False, None
        parts = found[1].split(b"\0")
        wanted = mode.encode("utf-8", "surrogatepass")
        for position in range(0, len(parts) - 1, 2):
            if parts[position] == wanted:
                return True, parts[position + 1].decode()
        return True, None

    def items(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Every id with its URLs (a replaced duplicate left out), in listing order."""
        for key, part in self.records():
            yield key.decode(), urls_of(part)

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """`items` as stored: the id's bytes and its `mode NUL URL ...` part."""
        for block in range(len(self._starts) - 1):
            raw = self._block(block)
            for index in range(_U32.unpack_from(raw)[0]):
                key, part = _split_record(_unpack_record(raw, index))
                if self._is_live(key, block * BLOCK + index):
                    yield key, part

    def stored(self, key: bytes) -> bytes | None:
        """The `mode NUL URL ...` part of the id `key` (bytes), None when not listed."""
        found = self._find(key)
        return None if found is None else found[1]

    def _block(self, block: int) -> bytes:
        if self._last_block[0] != block:
            raw = self._decompress(self._map[self._starts[block] : self._starts[block + 1]])
            self._last_block = (block, raw)
        return self._last_block[1]

    def _is_live(self, key: bytes, number: int) -> bool:
        """Whether record `number` (of `key`) is the one the table holds for its id.

        The table holds each id once; the entry for record `number` can only be its
        id's, on its probe path: no block to decompress to tell a replaced duplicate.
        """
        hashed = id_hash(key)
        tag, wanted = hashed >> 32, number + 1
        table, slots = self._table, self._slots
        slot = hashed % slots
        while True:
            current: int = table[slot]
            if current == 0:
                return False
            if current >> 32 == tag and current & _LOW == wanted:
                return True
            slot = slot + 1 if slot + 1 < slots else 0

    def close(self) -> None:
        self._starts.release()
        self._table.release()
        self._map.close()
