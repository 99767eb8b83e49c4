"""ImageInfo per source file, kept in memory and dropped when the file changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cachetools import LRUCache

from .iiif.image import ImageInfo
from .sources.base import SourceFile

Probe = Callable[[SourceFile, int | None], Awaitable[ImageInfo]]


class InfoCache:
    """An LRU of `ImageInfo` keyed by path and page, checked against the file's identity.

    Concurrent first requests for one file share a single probe; the table of
    probes in flight holds only running ones, so it is bounded by the requests.
    """

    def __init__(self, maxsize: int, probe: Probe) -> None:
        self._entries: LRUCache[tuple[str, int | None], tuple[str, ImageInfo]] = LRUCache(
            maxsize=maxsize
        )
        self._probe = probe
        self._in_flight: dict[tuple[str, int | None, str], asyncio.Future[ImageInfo]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, source: SourceFile, page: int | None = None) -> ImageInfo:
        """The info of `page` (1-based; None: the default page) of the file."""
        path = (str(source.path), page)
        cached = self._entries.get(path)
        if cached is not None and cached[0] == source.identity:
            return cached[1]
        key = (*path, source.identity)
        running = self._in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[ImageInfo] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            info = await self._probe(source, page)
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
