"""Image infos shared through Redis: a node never probes what another node has probed.

Keyed by the source's shared name, page and identity (`keys.SharedNames.info`), so a
changed file has a new key and is probed again; entries expire after `TTL` (Redis
bounds them). An info is small JSON (its dataclass fields).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..iiif.image import ImageInfo
from ..sources.base import SourceFile
from .keys import SharedNames
from .redis_link import RedisLink

KEY_PREFIX = "iiif:info:1:"
TTL = 30 * 86400


class SharedInfos:
    def __init__(self, redis: RedisLink, names: SharedNames) -> None:
        self._redis = redis
        self._names = names
        self.hits = 0
        self.misses = 0

    def available(self) -> bool:
        """Whether asking is worth it now (False while a failing link is paused)."""
        return self._redis.link.available()

    async def get(self, source: SourceFile, page: int | None) -> ImageInfo | None:
        return await self.lookup(str(source.path), page, source.identity)

    async def put(self, source: SourceFile, page: int | None, info: ImageInfo) -> None:
        await self.store(str(source.path), page, source.identity, info)

    async def lookup(self, path: str, page: int | None, identity: str) -> ImageInfo | None:
        """The info of `path`'s page while its identity is `identity` (an s3 object's is
        its ETag, known before its bytes are read)."""
        if not self.available():
            self.misses += 1
            return None
        key = KEY_PREFIX + self._names.info(path, page, identity)
        info = _parse(await self._redis.call(self._redis.client.get(key), None))
        if info is None:
            self.misses += 1
        else:
            self.hits += 1
        return info

    async def store(self, path: str, page: int | None, identity: str, info: ImageInfo) -> None:
        if not self.available():
            return
        key = KEY_PREFIX + self._names.info(path, page, identity)
        text = json.dumps(dataclasses.asdict(info))
        await self._redis.call(self._redis.client.set(key, text, ex=TTL), None)

    async def purge(self, paths: frozenset[str] | None) -> int:
        """Forget the infos of these source files, or (None) every shared info."""
        patterns = (
            [KEY_PREFIX + "*"]
            if paths is None
            else [KEY_PREFIX + self._names.info_prefix(p) + "*" for p in paths]
        )
        removed = 0
        for pattern in patterns:
            keys = [key async for key in self._redis.client.scan_iter(match=pattern, count=1000)]
            if keys:
                removed += await self._redis.client.delete(*keys)
        return removed

    def health(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses}


def _parse(raw: Any) -> ImageInfo | None:
    if raw is None:
        return None
    try:
        fields = json.loads(raw)
        return ImageInfo(**fields)
    except (ValueError, TypeError):
        return None  # written by another version: probed again
