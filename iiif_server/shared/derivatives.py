"""The shared derivative tier: finished derivatives in an S3 bucket, for every node.

Behind each node's memory and disk: a node that misses both asks the bucket before
rendering, and what it renders goes to the bucket too, in the background. Object keys
are `{prefix}{type}/{source}/{key}` (`keys.SharedNames`), so purging an identifier
or a type is one listing of a prefix and the DELETEs of what it lists.

The bucket is a cache: any failure (down, slow, denied) is a miss and a warning,
never an error for the request (`link.Link` pauses asking after one). The writes
waiting are bounded; beyond that, a derivative is not shared (it is on local disk).
The bucket's own lifecycle rules bound its size (README).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from ..errors import ServerError
from ..sources.fetch import Fetcher, FetchLimits
from ..sources.s3_client import S3Client
from ..sources.s3_config import S3Settings
from .bundles import Bundles
from .keys import SharedNames
from .link import Link

logger = logging.getLogger(__name__)

_MAX_WRITES = 32  # background PUTs at once; more are dropped
_MAX_OBJECT_BYTES = 64 * 2**20
_DELETES_AT_ONCE = 16
MAX_PURGED = 100_000  # objects one purge lists at most
# (local, shared) identity of a source whose identity here is this node's own.
Identity = tuple[str, str] | None


class SharedDerivatives:
    def __init__(self, settings: S3Settings, names: SharedNames) -> None:
        self.settings = settings
        self.names = names
        limits = FetchLimits(
            max_fetches=_MAX_WRITES + 8,
            max_waiting=256,
            connect_timeout=settings.connect_timeout,
            total_timeout=settings.timeout,
            max_bytes=_MAX_OBJECT_BYTES,
        )
        # No retries: a failed lookup is a render, cheaper than waiting to ask again.
        self._client = S3Client(settings, Fetcher(limits), retries=())
        self.link = Link("shared derivative tier", f"{settings.base_url}/{settings.bucket}")
        self.bundles = Bundles(self._client, self._key, self.link)
        self._writes: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.dropped = 0

    def _key(self, name: str) -> str:
        return self.settings.prefix + name

    async def get(
        self,
        type_name: str,
        source_path: str,
        key: str,
        identity: Identity = None,
        *,
        session: bool = False,
    ) -> bytes | None:
        """The shared derivative, or None (absent, or the bucket unavailable).
        `identity`: see `SharedNames.derivative`; `session`: a viewer is zooming in the
        image, so the source's bundles are read first (bundles.py)."""
        if not self.link.available():
            self.misses += 1
            return None
        relative = self.names.derivative(type_name, source_path, key, identity)
        if session:
            await self.bundles.load(self.names.source_prefix(type_name, source_path))
            data = self.bundles.take(relative)
            if data:
                self.hits += 1
                return data
        name = self._key(relative)
        try:
            data = await asyncio.wait_for(
                self._client.get_object(name, label="shared derivative"), self.settings.timeout
            )
        except (ServerError, TimeoutError) as error:
            self.link.failed(error)
            self.misses += 1
            return None
        self.link.succeeded()
        if not data:
            self.misses += 1
            return None
        self.hits += 1
        return data

    async def prefetch(self, type_name: str, source_path: str) -> int:
        """Read the source's bundles (a session starts); how many tiles they hold."""
        if not self.link.available():
            return 0
        prefix = self.names.source_prefix(type_name, source_path)
        await self.bundles.load(prefix)
        return self.bundles.found(prefix)

    def put_soon(
        self,
        type_name: str,
        source_path: str,
        key: str,
        data: bytes,
        identity: Identity = None,
        *,
        session: bool = False,
    ) -> None:
        """Share `data` in the background (dropped when too many writes wait); made for
        a `session`, it goes in the source's next bundle too."""
        if not data or len(data) > _MAX_OBJECT_BYTES or not self.link.available():
            return
        if len(self._writes) >= _MAX_WRITES:
            self.dropped += 1
            return
        relative = self.names.derivative(type_name, source_path, key, identity)
        if session:
            self.bundles.add(self.names.source_prefix(type_name, source_path), relative, data)
        name = self._key(relative)
        task = asyncio.ensure_future(self._put(name, data))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, name: str, data: bytes) -> None:
        try:
            await self._client.put_object(name, data, label="shared derivative")
        except ServerError as error:
            self.link.failed(error)
            return
        self.link.succeeded()
        self.writes += 1

    async def flush(self) -> None:
        """Wait for the background writes (at shutdown, in tests)."""
        await self.bundles.flush()
        while self._writes:
            await asyncio.wait(list(self._writes))

    async def purge(self, type_name: str | None, source_paths: Iterable[str] | None) -> int | None:
        """Delete a type's shared derivatives or (None) all; with `source_paths`, only
        those of these sources. How many; None when the bucket could not be reached."""
        if type_name is None:
            prefixes = [""]
        elif source_paths is None:
            prefixes = [self.names.type_prefix(type_name)]
        else:
            prefixes = sorted({self.names.source_prefix(type_name, p) for p in source_paths})
        await self.flush()  # a write still under way would land after the purge
        try:
            keys: list[str] = []
            for prefix in prefixes:
                keys += await self._client.list_keys(
                    self._key(prefix), label="shared derivatives", limit=MAX_PURGED
                )
            slots = asyncio.Semaphore(_DELETES_AT_ONCE)

            async def delete(key: str) -> None:
                async with slots:
                    await self._client.delete_object(key, label="shared derivative")

            await asyncio.gather(*(delete(key) for key in keys))
        except ServerError as error:
            self.link.failed(error)
            logger.warning("purge: the shared derivatives could not be deleted: %s", error)
            return None
        self.link.succeeded()
        return len(keys)

    def close(self) -> None:
        self._client.close()

    def health(self) -> dict[str, Any]:
        return {
            **self.link.health(),
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "writes_dropped": self.dropped,
            "writes_in_flight": len(self._writes) + self.bundles.in_flight,
            "bundles_written": self.bundles.written,
            "bundles_read": self.bundles.read,
        }
