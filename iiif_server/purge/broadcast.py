"""Purges between nodes: published on a Redis channel, applied by every front process.

The journal (`journal.py`) carries a purge to the front processes of one node; this
carries it to the other nodes, where each front process applies it. The files of a
node (derivatives on disk, downloads) are deleted by one of its processes only: the
first to claim the message for its node (`SET NX`), as the journal's writer does.
Processes of the node that published skip it: the journal reaches them.

Pub/sub delivers to whoever listens now: a node cut off from Redis while a purge is
published misses it (the admin answer says how many processes received it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any

from redis.exceptions import RedisError

from ..background import cancel_and_wait
from ..shared.redis_link import RedisLink
from .message import Purge

logger = logging.getLogger(__name__)

CHANNEL = "iiif:purge:1"
_CLAIM_SECONDS = 600
_RECONNECT_PAUSE = 1.0

# Applies purges here; `files`: this process deletes its node's files.
Apply = Callable[[list[Purge], bool], Awaitable[object]]


class RedisBroadcast:
    def __init__(self, redis: RedisLink, node: str) -> None:
        self._redis = redis
        self._node = node
        self._task: asyncio.Task[None] | None = None
        self.received = 0

    async def publish(self, purges: Sequence[Purge]) -> int | None:
        """Send `purges` to the other nodes; how many processes listened, this one included
        (None: Redis down)."""
        message = json.dumps(
            {
                "id": secrets.token_hex(8),
                "node": self._node,
                "purges": [purge.to_json() for purge in purges],
            }
        )
        return await self._redis.call(self._redis.client.publish(CHANNEL, message), None)

    def start(self, apply: Apply) -> None:
        self._task = asyncio.ensure_future(self._follow(apply))

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _follow(self, apply: Apply) -> None:
        while True:
            try:
                await self._listen(apply)
            except (RedisError, OSError, TimeoutError) as error:
                self._redis.link.failed(error)
            await asyncio.sleep(_RECONNECT_PAUSE)

    async def _listen(self, apply: Apply) -> None:
        pubsub = self._redis.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            self._redis.link.succeeded()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    await self._received(message.get("data"), apply)
        finally:
            with suppress(RedisError, OSError, TimeoutError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _received(self, data: Any, apply: Apply) -> None:
        try:
            raw = json.loads(data)
            purges = [Purge.from_json(each) for each in raw["purges"]]
            origin, message_id = str(raw["node"]), str(raw["id"])
        except (ValueError, TypeError, KeyError):
            logger.warning("purge broadcast: ignored a message that is not a purge")
            return
        if origin == self._node:
            return
        claim = f"{CHANNEL}:claim:{message_id}:{self._node}"
        files = bool(
            await self._redis.call(
                self._redis.client.set(claim, "1", nx=True, ex=_CLAIM_SECONDS), False
            )
        )
        self.received += len(purges)
        try:
            await apply(purges, files)
        except Exception:
            # An unknown type here (configurations differ): nothing more to do here.
            logger.exception("purge broadcast: could not apply %s", ", ".join(map(str, purges)))
