"""Where lookups are remembered: memory, a SQLite file with memory in front, or Redis.

An entry is keyed by `(provider, normalised id)` and holds a cover URL, or
None for a confirmed "no cover"; an absent entry is unknown. Every entry has
an expiry. Bounds: the memory LRU holds `memory_entries`; the SQLite file
drops expired rows and then the soonest-expiring ones above `store_entries`;
Redis expires every key by itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

logger = logging.getLogger(__name__)

CacheKey = tuple[str, str]  # (provider, normalised id)
T = TypeVar("T")
# Rows written between two purges of the SQLite file.
_PURGE_EVERY = 1000


class Entry(NamedTuple):
    url: str | None  # None: the provider has no cover
    expires: float  # wall-clock time


class CoverStore(Protocol):
    def peek(self, keys: Iterable[CacheKey]) -> dict[CacheKey, str | None]:
        """What memory holds, without waiting for anything (the hot path)."""
        ...

    async def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, str | None]: ...

    async def put_many(self, entries: Mapping[CacheKey, tuple[str | None, float]]) -> None:
        """Store `{key: (url or None, ttl seconds)}`."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class ExpiringLRU:
    """At most `max_entries` entries, least recently used dropped first; expired ones unseen.

    Lighter than cachetools' TLRUCache on the hot path (a cached /cover reads
    eight of these per request): an expired entry is dropped when read, or
    when it reaches the old end of the LRU.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, str | None]:
        now = self._clock()
        entries = self._entries
        found: dict[CacheKey, str | None] = {}
        for key in keys:
            entry = entries.get(key)
            if entry is None:
                continue
            if entry.expires <= now:
                del entries[key]
                continue
            entries.move_to_end(key)
            found[key] = entry.url
        return found

    def put(self, key: CacheKey, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class MemoryStore:
    """A bounded LRU whose entries expire; alone it serves one-off commands."""

    # How long memory may answer for an entry before the backing store is read again.
    memory_seconds = math.inf

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._memory = ExpiringLRU(max_entries, clock)

    def peek(self, keys: Iterable[CacheKey]) -> dict[CacheKey, str | None]:
        return self._memory.get_many(keys)

    async def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, str | None]:
        return self.peek(keys)

    def _remember(self, entries: Mapping[CacheKey, tuple[str | None, float]]) -> list[Entry]:
        now = self._clock()
        stored = []
        for key, (url, ttl) in entries.items():
            entry = Entry(url, now + ttl)
            self._memory.put(key, Entry(url, min(entry.expires, now + self.memory_seconds)))
            stored.append(entry)
        return stored

    async def put_many(self, entries: Mapping[CacheKey, tuple[str | None, float]]) -> None:
        self._remember(entries)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class SqliteStore(MemoryStore):
    """A SQLite file (survives restarts) behind the memory LRU.

    One thread owns the connection, so the event loop never waits on the disk;
    memory answers hits without leaving the loop. Several server processes may
    share the file: memory answers for at most `memory_seconds`, so a change
    made through another process (an override) is seen within that time.
    """

    memory_seconds = 60.0

    def __init__(
        self,
        path: Path,
        *,
        memory_entries: int,
        max_rows: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(memory_entries, clock)
        self._path = path
        self._max_rows = max_rows
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._writes_since_purge = 0

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="covers-sqlite")
        try:
            self._db = await self._run(self._open)
        except sqlite3.Error as error:
            # The cache is not precious: serve from memory rather than not at all.
            logger.error("cover store %s unusable, keeping covers in memory: %s", self._path, error)

    def _open(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS covers (id TEXT NOT NULL, provider TEXT NOT NULL,"
                " url TEXT, expires REAL NOT NULL, PRIMARY KEY (id, provider)) WITHOUT ROWID"
            )
            db.execute("CREATE INDEX IF NOT EXISTS covers_expires ON covers (expires)")
        except sqlite3.Error:
            db.close()
            raise
        return db

    async def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, str | None]:
        found = self.peek(keys)
        missing = {key for key in keys if key not in found}
        if missing and self._db is not None:
            now = self._clock()
            rows = await self._run(self._select, missing, now)
            for provider, key, url, expires in rows:
                if (provider, key) in missing:
                    memory_expires = min(expires, now + self.memory_seconds)
                    self._memory.put((provider, key), Entry(url, memory_expires))
                    found[provider, key] = url
        return found

    def _select(self, keys: Iterable[CacheKey], now: float) -> list[tuple[str, str, Any, float]]:
        assert self._db is not None
        ids = sorted({key for _, key in keys})
        marks = ",".join("?" * len(ids))
        return self._db.execute(
            f"SELECT provider, id, url, expires FROM covers WHERE id IN ({marks}) AND expires > ?",
            (*ids, now),
        ).fetchall()

    async def put_many(self, entries: Mapping[CacheKey, tuple[str | None, float]]) -> None:
        stored = self._remember(entries)
        if self._db is not None:
            rows = [(key, provider, entry.url, entry.expires)
                    for (provider, key), entry in zip(entries, stored, strict=True)]  # fmt: skip
            await self._run(self._insert, rows)

    def _insert(self, rows: list[tuple[str, str, str | None, float]]) -> None:
        assert self._db is not None
        self._db.executemany("INSERT OR REPLACE INTO covers VALUES (?, ?, ?, ?)", rows)
        self._writes_since_purge += len(rows)
        if self._writes_since_purge >= _PURGE_EVERY:
            self._writes_since_purge = 0
            self.purge()

    def purge(self) -> None:
        """Drop expired rows, then the soonest-expiring ones above the row budget."""
        assert self._db is not None
        self._db.execute("DELETE FROM covers WHERE expires <= ?", (self._clock(),))
        (count,) = self._db.execute("SELECT count(*) FROM covers").fetchone()
        if count > self._max_rows:
            self._db.execute(
                "DELETE FROM covers WHERE (id, provider) IN"
                " (SELECT id, provider FROM covers ORDER BY expires LIMIT ?)",
                (count - self._max_rows,),
            )

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)
        self._executor = None


def make_store(
    store: str, cache_path: Path, *, memory_entries: int, max_rows: int, timeout: float
) -> CoverStore:
    """`sqlite`: `{cache_path}/covers/covers.sqlite3`; `redis://...`: a shared Redis."""
    if store == "sqlite":
        path = cache_path / "covers" / "covers.sqlite3"
        return SqliteStore(path, memory_entries=memory_entries, max_rows=max_rows)
    from .redis_store import RedisStore

    return RedisStore(store, timeout=timeout)
