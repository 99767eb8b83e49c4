"""Bundles: the tiles of a deep-zoom session in one shared object, read with one GET.

A node that finds a tile in the shared tier pays a GET per tile, and on a busy
machine that costs nearly what rendering a tile of a JPEG does (README, "Running
several nodes"). So what a node renders for a session (the image's info.json was
asked for lately) is also written in one object, a moment after the session's last
tile: `{type}/{source}/bundles/{time}-{random}`, under the source's prefix, so a
purge deletes it with the rest. A node that starts a session on a source it has
not loaded lately lists that folder and reads the newest bundles (a LIST and a GET
or two instead of a GET per tile), and keeps their entries in memory, bounded,
until the tiles are asked for. A purge anywhere empties that memory (`forget`).

A bundle only adds a copy of objects the tier holds anyway: each tile is still
written on its own, and whatever fails here is a GET per tile again.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable, Iterator

from cachetools import LRUCache, TTLCache

from ..errors import ServerError
from ..sources.s3_client import S3Client
from .link import Link

FOLDER = "bundles/"
_MAGIC = b"iiif-bundle 1\n"
_ENTRY = struct.Struct(">HI")  # name length, data length
_QUIET = 1.0  # seconds without a new tile before a session's bundle is written
MAX_ENTRIES = 512  # per bundle; a larger session writes several
MAX_BUNDLE_BYTES = 16 * 2**20
MAX_WAITING_BYTES = 64 * 2**20  # tiles held for bundles not written yet; more are not bundled
_BUNDLES_READ = 4  # the newest of a source's bundles that a node reads
_MEMORY_BYTES = 64 * 2**20  # entries read and not yet asked for
_LOADED_SECONDS = 60.0  # a source's bundles are listed again after this long


def encode(entries: list[tuple[str, bytes]]) -> bytes:
    parts = [_MAGIC]
    for name, data in entries:
        encoded = name.encode("utf-8")
        parts += (_ENTRY.pack(len(encoded), len(data)), encoded, data)
    return b"".join(parts)


def decode(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """The entries of a bundle; none of one that is not a bundle, up to a cut-off end."""
    if not blob.startswith(_MAGIC):
        return
    offset = len(_MAGIC)
    while offset + _ENTRY.size <= len(blob):
        name_length, data_length = _ENTRY.unpack_from(blob, offset)
        offset += _ENTRY.size
        end = offset + name_length + data_length
        if end > len(blob):
            return
        name = blob[offset : offset + name_length].decode("utf-8", "replace")
        yield name, blob[offset + name_length : end]
        offset = end


class _Pending:
    def __init__(self) -> None:
        self.entries: list[tuple[str, bytes]] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None


class Bundles:
    def __init__(self, client: S3Client, key_for: Callable[[str], str], link: Link) -> None:
        self._client = client
        self._key_for = key_for  # a name in the tier -> the object's key
        self._link = link
        self._pending: dict[str, _Pending] = {}  # source prefix -> tiles not yet written
        self._writes: set[asyncio.Task[None]] = set()
        self._waiting_bytes = 0  # of `_pending` and of the writes under way
        self._entries: LRUCache[str, bytes] = LRUCache(_MEMORY_BYTES, getsizeof=len)
        # Source prefix -> tiles its bundles held when read.
        self._loaded: TTLCache[str, int] = TTLCache(maxsize=4096, ttl=_LOADED_SECONDS)
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._generation = 0  # bumped by `forget`: a load under way then keeps nothing
        self.written = 0
        self.read = 0

    @property
    def in_flight(self) -> int:
        return len(self._pending) + len(self._writes)

    def add(self, source_prefix: str, name: str, data: bytes) -> None:
        if self._waiting_bytes + len(data) > MAX_WAITING_BYTES:
            return  # shared on its own only
        self._waiting_bytes += len(data)
        pending = self._pending.setdefault(source_prefix, _Pending())
        pending.entries.append((name, data))
        pending.size += len(data)
        if pending.timer is not None:
            pending.timer.cancel()
        if len(pending.entries) >= MAX_ENTRIES or pending.size >= MAX_BUNDLE_BYTES:
            self._write(source_prefix)
        else:
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(_QUIET, self._write, source_prefix)

    def _write(self, source_prefix: str) -> None:
        pending = self._pending.pop(source_prefix, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        name = f"{source_prefix}{FOLDER}{time.time_ns():020d}-{os.urandom(4).hex()}"
        task = asyncio.ensure_future(self._put(name, encode(pending.entries), pending.size))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, name: str, blob: bytes, size: int) -> None:
        try:
            await self._send(name, blob)
        finally:
            self._waiting_bytes -= size

    async def _send(self, name: str, blob: bytes) -> None:
        try:
            await self._client.put_object(self._key_for(name), blob, label="shared bundle")
        except ServerError as error:
            self._link.failed(error)
            return
        self.written += 1

    async def flush(self) -> None:
        """Write what waits now, and wait for the writes (at shutdown, purges, tests)."""
        for source_prefix in list(self._pending):
            self._write(source_prefix)
        while self._writes:
            await asyncio.wait(list(self._writes))

    async def load(self, source_prefix: str) -> None:
        """Read the source's newest bundles, once per `_LOADED_SECONDS` (single flight)."""
        if source_prefix in self._loaded:
            return
        task = self._loading.get(source_prefix)
        if task is None:
            task = asyncio.ensure_future(self._load(source_prefix))
            self._loading[source_prefix] = task
            task.add_done_callback(lambda _: self._loading.pop(source_prefix, None))
        await asyncio.shield(task)

    async def _load(self, source_prefix: str) -> None:
        generation = self._generation
        folder = self._key_for(source_prefix + FOLDER)
        try:
            keys = await self._client.list_keys(folder, label="shared bundles", limit=1000)
            blobs = [
                await self._client.get_object(key, label="shared bundle")
                for key in sorted(keys)[-_BUNDLES_READ:]
            ]
        except ServerError as error:
            self._link.failed(error)
            return
        if generation != self._generation:
            return  # purged meanwhile: what was read may be gone
        found = 0
        for blob in blobs:
            if blob:
                self.read += 1
                for name, data in decode(blob):
                    if len(data) <= _MEMORY_BYTES // 8:
                        self._entries[name] = data
                        found += 1
        self._loaded[source_prefix] = found

    def found(self, source_prefix: str) -> int:
        """Tiles the source's bundles held when last read (0: none, or not read)."""
        return self._loaded.get(source_prefix, 0)

    def take(self, name: str) -> bytes | None:
        """A loaded entry, given once: the node keeps it on its own disk from then on."""
        return self._entries.pop(name, None)

    def forget(self) -> None:
        """After a purge: nothing loaded is served or written, sources are listed again."""
        self._generation += 1
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            self._waiting_bytes -= pending.size
        self._pending.clear()
        self._entries.clear()
        self._loaded.clear()
