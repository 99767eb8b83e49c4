"""ImageInfo per source file, kept in memory and dropped when the file changes.

With a shared store (`shared.infos.SharedInfos`, in Redis) a miss asks it before
probing, and a probe's result goes there too: other nodes need not probe again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from cachetools import LRUCache

from .iiif.image import ImageInfo
from .sources.base import SourceFile, SourceScope

Probe = Callable[[SourceFile, int | None], Awaitable[ImageInfo]]


class SharedStore(Protocol):
    async def get(self, source: SourceFile, page: int | None) -> ImageInfo | None: ...

    async def put(self, source: SourceFile, page: int | None, info: ImageInfo) -> None: ...


class InfoCache:
    """An LRU of `ImageInfo` keyed by path and page, checked against the file's identity.

    Concurrent first requests for one file share a single probe; the table of
    probes in flight holds only running ones, so it is bounded by the requests.
    """

    def __init__(self, maxsize: int, probe: Probe, shared: SharedStore | None = None) -> None:
        self._entries: LRUCache[tuple[str, int | None], tuple[str, ImageInfo]] = LRUCache(
            maxsize=maxsize
        )
        self._probe = probe
        self._shared = shared
        self._in_flight: dict[tuple[str, int | None, str], asyncio.Future[ImageInfo]] = {}
        self.hits = 0
        self.misses = 0  # probes started or joined

    def __len__(self) -> int:
        return len(self._entries)

    def purge(self, scope: SourceScope) -> int:
        """Forget the infos of the sources in `scope` (every page): probed again; how many."""
        keys = [key for key in self._entries if scope.matches(key[0])]
        for key in keys:
            del self._entries[key]
        return len(keys)

    async def get(self, source: SourceFile, page: int | None = None) -> ImageInfo:
        """The info of `page` (1-based; None: the default page) of the file."""
        path = (str(source.path), page)
        cached = self._entries.get(path)
        if cached is not None and cached[0] == source.identity:
            self.hits += 1
            return cached[1]
        self.misses += 1
        key = (*path, source.identity)
        running = self._in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[ImageInfo] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            info = await self._probe_or_share(source, page)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            self._entries[path] = (source.identity, info)
            future.set_result(info)
            return info
        finally:
            del self._in_flight[key]

    async def _probe_or_share(self, source: SourceFile, page: int | None) -> ImageInfo:
        if self._shared is None:
            return await self._probe(source, page)
        info = await self._shared.get(source, page)
        if info is None:
            info = await self._probe(source, page)
            await self._shared.put(source, page, info)
        return info
