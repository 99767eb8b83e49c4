"""One Redis client per front process for the shared parts (infos, purge broadcast).

Short socket timeouts: Redis answers in well under a millisecond when it is well,
so a request never waits long for one that is not; `Link` then pauses asking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio
from redis.exceptions import RedisError

from .link import Link

T = TypeVar("T")
TIMEOUT = 0.5


class RedisLink:
    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.link = Link("redis", url.split("@")[-1])  # no password in logs
        self._client: redis.asyncio.Redis | None = None

    @property
    def client(self) -> redis.asyncio.Redis:
        # Made on first use, inside the running loop its connections belong to.
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                health_check_interval=30,
            )
        return self._client

    async def call(self, operation: Awaitable[T], default: T) -> T:
        """`operation`'s result, or `default` when Redis fails (noted in `link`)."""
        try:
            result = await asyncio.wait_for(operation, self.timeout * 2)
        except (RedisError, OSError, TimeoutError) as error:
            self.link.failed(error)
            return default
        self.link.succeeded()
        return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
