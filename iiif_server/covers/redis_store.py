"""A Redis store: one cover cache shared by server processes and machines.

No memory in front of it, so an override made through one process is seen by
all at once. Keys expire in Redis itself (`SET ... PX`), which bounds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence

import redis.asyncio
from redis.exceptions import RedisError

from .store import CacheKey

logger = logging.getLogger(__name__)

KEY_PREFIX = "iiif-covers:1:"


def redis_key(key: CacheKey) -> str:
    provider, identifier = key
    return f"{KEY_PREFIX}{provider}:{identifier}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    def __init__(self, url: str, *, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._client: redis.asyncio.Redis | None = None

    async def start(self) -> None:
        # Created here, inside the running loop that will use its connections.
        self._client = redis.asyncio.Redis.from_url(
            self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
        )
        try:
            await asyncio.wait_for(self._client.ping(), self._timeout)
        except (RedisError, OSError, TimeoutError) as error:
            # Lookups still work without it (nothing is cached) until Redis is back.
            logger.warning("cover store %s is not reachable yet: %s", self._url, error)

    def peek(self, keys: Iterable[CacheKey]) -> dict[CacheKey, str | None]:
        return {}

    async def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, str | None]:
        assert self._client is not None
        values = await self._client.mget([redis_key(key) for key in keys])
        return {
            key: _text(value) or None
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    async def put_many(self, entries: Mapping[CacheKey, tuple[str | None, float]]) -> None:
        assert self._client is not None
        async with self._client.pipeline(transaction=False) as pipe:
            for key, (url, ttl) in entries.items():
                pipe.set(redis_key(key), url or "", px=max(1, round(ttl * 1000)))
            await pipe.execute()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
