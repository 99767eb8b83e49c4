"""The derivative cache: finished image bytes on disk, keyed by a canonical request string.

A hit is the hot path of the whole server and is answered by the front process itself:
one sha256 of the short key, one dict lookup, one open and one read of a known length.
No directory scans and no hashing of the body.

Layout: `root/ab/abcd...` (fanned out over 256 directories: a second level would cost
three inode creations per new file on a fresh cache, and a million entries are still
only ~4000 a directory). A key given with a `Group` (its type and source) has a name
that starts with the source's tag, so that one source's derivatives share a folder and
can be purged without a walk of the tree (see `cache_layout`). Files appear under their final name
only when complete (a temp file in the same directory, then `os.replace`), so a reader
never sees half a file.

The in-memory index (digest -> size, in LRU order) mirrors the files and is bounded by
`max_bytes`, as the files are. File mtimes carry the LRU order across restarts: `load()`
orders the entries by mtime, and a hit refreshes the mtime at most once per
`touch_interval` so that a hit stays one cheap call.

Several front processes may share one root: each indexes what it writes and finds, and
adopts on a miss a file another process wrote; the budgets of all of them together
bound the disk. All methods are meant to be called from the event-loop thread; there
is no locking.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from .cache_layout import (
    TEMP_PREFIX,
    Group,
    Selection,
    entry_name,
    remove_matching,
    scan_leaf,
    subdirectories,
)
from .cache_writes import WriteBehind

__all__ = ["TEMP_PREFIX", "CacheStats", "DerivativeCache", "Group", "Selection"]

logger = logging.getLogger(__name__)

# A disk that is full stays full for a while: one warning a minute is enough to be seen.
_WARNING_INTERVAL = 60.0


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of the cache for a status page."""

    entries: int
    total_bytes: int
    max_bytes: int
    hits: int
    misses: int
    evictions: int
    write_errors: int
    in_flight: int
    writes_pending: int  # derivatives served from memory until their file lands


class _Entry:
    __slots__ = ("size", "touched")

    def __init__(self, size: int, touched: float) -> None:
        self.size = size
        # Wall-clock time the file's mtime was last set (by a write or a hit).
        self.touched = touched


class DerivativeCache:
    """Finished derivatives on disk, bounded in bytes, least recently used evicted first."""

    def __init__(self, root: Path, max_bytes: int, *, touch_interval: float = 600.0) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.touch_interval = touch_interval
        # A plain string prefix: building a Path on every hit would cost more than the read.
        self._prefix = os.fspath(self.root)
        self._index: OrderedDict[str, _Entry] = OrderedDict()
        self._total_bytes = 0
        # Only keys being computed right now: bounded by the number of concurrent requests.
        self._in_flight: dict[str, asyncio.Task[bytes]] = {}
        # Derivatives made a moment ago, served from memory until their file lands.
        self.writes = WriteBehind(
            self._write, self._path, self._record, self._write_failed, self._store
        )
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.write_errors = 0
        # Bumped by every purge: a computation that began before one is not stored.
        self._generation = 0
        self._last_warning = -_WARNING_INTERVAL

    @property
    def total_bytes(self) -> int:
        return self._total_bytes

    def __len__(self) -> int:
        return len(self._index)

    def stats(self) -> CacheStats:
        return CacheStats(
            entries=len(self._index),
            total_bytes=self._total_bytes,
            max_bytes=self.max_bytes,
            hits=self.hits,
            misses=self.misses,
            evictions=self.evictions,
            write_errors=self.write_errors,
            in_flight=len(self._in_flight),
            writes_pending=len(self.writes),
        )

    def load(self) -> None:
        """Index the entries already on disk (oldest mtime first), drop temp files, evict."""
        self.root.mkdir(parents=True, exist_ok=True)
        found: list[tuple[float, str, int]] = []
        for directory in subdirectories(self.root):
            found.extend(scan_leaf(Path(directory.path), directory.name))
        found.sort()
        self._index.clear()
        self._total_bytes = 0
        for mtime, digest, size in found:
            self._index[digest] = _Entry(size, mtime)
            self._total_bytes += size
        self._evict()

    def get(self, key: str, group: Group | None = None) -> bytes | None:
        """The cached bytes for `key`, or None. A hit makes the entry the most recent."""
        digest = entry_name(key, group)
        entry = self._index.get(digest)
        if entry is None:
            pending = self.writes.get(digest)
            if pending is not None:  # made a moment ago, still being written
                self.hits += 1
                return pending
            return self._adopt(digest)
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                # One byte more than expected reveals a file that changed underneath.
                data = os.read(fd, entry.size + 1)
            finally:
                os.close(fd)
        except OSError:
            data = None
        if data is None or len(data) != entry.size:
            # Deleted, unreadable or replaced by someone else: a miss, never an error.
            self._forget(digest)
            self.misses += 1
            return None
        self._index.move_to_end(digest)
        now = time.time()
        if now - entry.touched >= self.touch_interval:
            entry.touched = now
            with suppress(OSError):
                os.utime(path)
        self.hits += 1
        return data

    def file_for(self, key: str, group: Group | None = None) -> str | None:
        """The path of `key`'s file when it is indexed, for a reader in another process.

        The entry counts as used. It may still be evicted before it is read:
        the reader must treat a missing file as a miss.
        """
        digest = entry_name(key, group)
        if digest not in self._index:
            return None
        self._index.move_to_end(digest)
        return self._path(digest)

    def _adopt(self, digest: str) -> bytes | None:
        """A file this index does not know: written by another front process on this root."""
        try:
            with open(self._path(digest), "rb") as file:  # noqa: PTH123 (hot path)
                data = file.read(self.max_bytes + 1)
        except OSError:
            data = b""
        if not data or len(data) > self.max_bytes:
            self.misses += 1
            return None
        self._index[digest] = _Entry(len(data), time.time())
        self._total_bytes += len(data)
        self._evict()
        self.hits += 1
        return data

    def put(self, key: str, data: bytes, group: Group | None = None) -> None:
        """Store `data` atomically, then evict least recently used entries down to max_bytes.

        Oversize and empty payloads are not stored. A failed write (disk full, permissions)
        is logged and leaves no file behind; it never raises.
        """
        size = len(data)
        # An empty body is never a valid derivative, and an empty file is what a power cut
        # can leave behind a rename that was not fsynced (`load()` discards those).
        if size == 0 or size > self.max_bytes:
            return
        self._store(key, entry_name(key, group), data)

    def _store(self, key: str, digest: str, data: bytes) -> None:
        try:
            self._write(self._path(digest), data)
        except OSError as exc:
            self._write_failed(key, exc)
            return
        self._record(digest, len(data))

    def _record(self, digest: str, size: int) -> None:
        """Index a file just written as the most recent entry, then evict to the budget."""
        old = self._index.pop(digest, None)
        if old is not None:
            self._total_bytes -= old.size
        self._index[digest] = _Entry(size, time.time())
        self._total_bytes += size
        self._evict()

    def put_soon(self, key: str, data: bytes, group: Group | None = None) -> None:
        """Like `put`, but the file is written by a background thread, a little later
        (`cache_writes`); until it lands, `get` answers from memory."""
        size = len(data)
        if size == 0 or size > self.max_bytes:
            return
        if not self.writes.add(key, entry_name(key, group), data):
            self.put(key, data, group)

    async def flush(self) -> None:
        """Wait until every background write has landed (at shutdown, in tests)."""
        await self.writes.flush()

    def close(self) -> None:
        """Stop the writer thread; writes still deferred (no `flush()` before) are made here."""
        self.writes.close()

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], group: Group | None = None
    ) -> bytes:
        """The cached bytes for `key`, or the result of `compute()`, which is then stored.

        Concurrent calls for one key share a single computation and its result or its
        exception; a failure is not remembered. The computation runs in its own task, so a
        caller that goes away (a client disconnecting) does not cancel it for the others.
        """
        data = self.get(key, group)
        if data is not None:
            return data
        task = self._in_flight.get(key)
        if task is None or task.done():
            task = asyncio.ensure_future(self._compute_and_store(key, compute, group))
            self._in_flight[key] = task
            task.add_done_callback(functools.partial(self._computation_done, key))
        return await asyncio.shield(task)

    async def _compute_and_store(
        self, key: str, compute: Callable[[], Awaitable[bytes]], group: Group | None
    ) -> bytes:
        generation = self._generation
        data = await compute()
        if generation == self._generation:  # else it may be made from what was purged
            self.put_soon(key, data, group)
        return data

    async def purge(self, selection: Selection, *, files: bool = True) -> int:
        """Forget the entries `selection` matches; with `files`, delete them from disk too.

        Front processes sharing the root each forget their own index entries, but
        only one of them needs to delete the files (`files=False` for the others):
        a second deletion a moment later could remove what was written since.
        Returns the number of files deleted (or index entries forgotten without).
        """
        self._generation += 1
        await self.flush()  # a write still in the queue would land after the purge
        forgotten = [name for name in self._index if selection.matches(name)]
        for name in forgotten:
            self._forget(name)
        if not files:
            return len(forgotten)
        return await asyncio.to_thread(remove_matching, self.root, selection)

    def _computation_done(self, key: str, task: asyncio.Task[bytes]) -> None:
        # A done callback rather than a `finally` in the coroutine: it also runs for a task
        # cancelled before it started, which would otherwise stay in the table for good.
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        # When every caller went away nobody awaits the exception: retrieve it, so asyncio
        # does not log "Task exception was never retrieved" for a failure no caller saw.
        if not task.cancelled():
            task.exception()

    def _path(self, digest: str) -> str:
        return f"{self._prefix}/{digest[:2]}/{digest}"

    def _write(self, path: str, data: bytes) -> None:
        directory = Path(path).parent
        temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(temp, flags, 0o644)
        except FileNotFoundError:
            # First entry in this fan-out directory, or the cache was cleaned underneath.
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, flags, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            temp.replace(path)
        except BaseException:
            with suppress(OSError):
                temp.unlink()
            raise

    def _write_failed(self, key: str, exc: OSError) -> None:
        self.write_errors += 1
        now = time.monotonic()
        if now - self._last_warning >= _WARNING_INTERVAL:
            self._last_warning = now
            reason = errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__
            logger.warning(
                "derivative cache: cannot store %r (%s: %s); %d write failures so far",
                key,
                reason,
                exc.strerror or exc,
                self.write_errors,
            )

    def _forget(self, digest: str) -> None:
        entry = self._index.pop(digest, None)
        if entry is not None:
            self._total_bytes -= entry.size

    def _evict(self) -> None:
        while self._total_bytes > self.max_bytes:
            digest, entry = self._index.popitem(last=False)
            self._total_bytes -= entry.size
            self.evictions += 1
            with suppress(OSError):
                Path(self._path(digest)).unlink(missing_ok=True)
