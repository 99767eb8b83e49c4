"""Purges between nodes: published on a Redis channel, applied by every front process.

The journal (`journal.py`) carries a purge to the front processes of one node; this
carries it to the other nodes, where each front process applies it. The files of a
node (derivatives on disk, downloads) are deleted by one of its processes only: the
first to claim the message for its node (`SET NX`), as the journal's writer does.
Processes of the node that published skip it: the journal reaches them.

Pub/sub delivers to whoever listens now, so every purge is also appended to a
capped Redis stream, and the message on the channel names its entry. A front
process that lost Redis for a while (a network cut, a Redis failover with its
data) reads the entries it missed when it subscribes again: a purge published
meanwhile still reaches it. A process started afresh begins at the stream's end
(its memory holds nothing to purge), unless its node wrote down how far it had
read (`position`, a file in the node's cache folder): then a node that was down
as a whole catches up too, and deletes the files purged meanwhile. Entries older
than the stream keeps are gone, which the log says.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from ..background import cancel_and_wait
from ..shared.redis_link import RedisLink
from .message import Purge

logger = logging.getLogger(__name__)

CHANNEL = "iiif:purge:1"
# The purges of the last while, for processes that were cut off (entries, about).
STREAM = "iiif:purge:stream:1"
STREAM_ENTRIES = 10_000
_CLAIM_SECONDS = 600
_RECONNECT_PAUSE = 1.0
# Messages applied lately (a catch-up may meet one the channel brought too).
_REMEMBERED = 4096
_ENTRY = re.compile(r"\d{1,20}-\d{1,20}")

# Applies purges here; `files`: this process deletes its node's files.
Apply = Callable[[list[Purge], bool], Awaitable[object]]


class RedisBroadcast:
    def __init__(self, redis: RedisLink, node: str, position: Path | None = None) -> None:
        self._redis = redis
        self._node = node
        self._position = position  # where the node's processes note the newest entry read
        self._task: asyncio.Task[None] | None = None
        self._last_entry: str | None = None  # the newest stream entry seen
        self._applied: OrderedDict[str, None] = OrderedDict()
        self.received = 0
        self.caught_up = 0  # purges read from the stream after a cut

    async def publish(self, purges: Sequence[Purge]) -> int | None:
        """Send `purges` to the other nodes; how many processes listened, this one included
        (None: Redis down)."""
        message: dict[str, Any] = {
            "id": secrets.token_hex(8),
            "node": self._node,
            "purges": [purge.to_json() for purge in purges],
        }
        client = self._redis.client
        add = client.xadd(
            STREAM, {"message": json.dumps(message)}, maxlen=STREAM_ENTRIES, approximate=True
        )
        entry = await self._redis.call(add, None)
        if entry is None:
            return None
        message["entry"] = _text(entry)
        return await self._redis.call(client.publish(CHANNEL, json.dumps(message)), None)

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
        if self._last_entry is None:
            # Read before subscribing: a purge published in between is after it in the
            # stream, and then comes in the catch-up.
            self._last_entry = await self._starting_entry()
        pubsub = self._redis.client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message.get("type") == "subscribe":
                    # Subscribed (again: redis-py reconnects by itself after a cut):
                    # from now on purges come on the channel; the stream has the rest.
                    await self._catch_up(apply)
                    self._redis.link.succeeded()
                elif message.get("type") == "message":
                    await self._received(message.get("data"), apply)
        finally:
            with suppress(RedisError, OSError, TimeoutError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _starting_entry(self) -> str:
        """Where this process starts reading: its node's noted position, else the end."""
        newest = _entries(await self._redis.client.xrevrange(STREAM, count=1))
        end = newest[0][0] if newest else "0-0"
        saved = self._saved_position()
        # A position past the stream's end is another Redis's: start at this one's end.
        if saved is not None and _entry_key(saved) <= _entry_key(end):
            return saved
        return end

    async def _catch_up(self, apply: Apply) -> None:
        """Apply the stream's entries after the last one seen."""
        client = self._redis.client
        assert self._last_entry is not None  # set before subscribing
        missed = _entries(await client.xrange(STREAM, min="(" + self._last_entry, max="+"))
        oldest = _entries(await client.xrange(STREAM, count=1)) if missed else []
        if oldest and oldest[0][0] == missed[0][0] and self._last_entry != "0-0":
            logger.warning(
                "purge broadcast: Redis keeps about %d purges, and was out of reach long "
                "enough that some may be gone: purge again what must be gone",
                STREAM_ENTRIES,
            )
        for entry, data in missed:
            await self._received(data, apply, entry=entry, caught_up=True)

    async def _received(
        self, data: Any, apply: Apply, *, entry: str | None = None, caught_up: bool = False
    ) -> None:
        try:
            raw = json.loads(data)
            purges = [Purge.from_json(each) for each in raw["purges"]]
            origin, message_id = str(raw["node"]), str(raw["id"])
            entry = entry or (str(raw["entry"]) if "entry" in raw else None)
        except (ValueError, TypeError, KeyError):
            logger.warning("purge broadcast: ignored a message that is not a purge")
            return
        if entry is not None and (
            self._last_entry is None or _entry_key(entry) > _entry_key(self._last_entry)
        ):
            self._last_entry = entry
            self._save_position(entry)
        if origin == self._node or message_id in self._applied:
            return
        self._applied[message_id] = None
        if len(self._applied) > _REMEMBERED:
            self._applied.popitem(last=False)
        claim = f"{CHANNEL}:claim:{message_id}:{self._node}"
        files = bool(
            await self._redis.call(
                self._redis.client.set(claim, "1", nx=True, ex=_CLAIM_SECONDS), False
            )
        )
        self.received += len(purges)
        if caught_up:
            self.caught_up += len(purges)
        try:
            await apply(purges, files)
        except Exception:
            # An unknown type here (configurations differ): nothing more to do here.
            logger.exception("purge broadcast: could not apply %s", ", ".join(map(str, purges)))

    def _saved_position(self) -> str | None:
        if self._position is None:
            return None
        try:
            text = self._position.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if _ENTRY.fullmatch(text) else None

    def _save_position(self, entry: str) -> None:
        """Note `entry` for the node's next processes (a few bytes; purges are rare)."""
        if self._position is None:
            return
        temp = self._position.with_name(f".{self._position.name}.{os.getpid()}")
        try:
            self._position.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(entry, encoding="ascii")
            temp.replace(self._position)
        except OSError as error:
            logger.warning("purge broadcast: cannot note the stream position: %s", error)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(raw: Any) -> list[tuple[str, Any]]:
    """(entry id, its message) of stream entries as redis-py returns them."""
    found = []
    for entry, fields in raw or ():
        if entry is not None and fields:
            found.append((_text(entry), fields.get(b"message", fields.get("message"))))
    return found


def _entry_key(entry: str) -> tuple[int, int]:
    """A stream entry id (`milliseconds-sequence`) in the order Redis gives them."""
    milliseconds, _, sequence = entry.partition("-")
    return int(milliseconds), int(sequence or 0)
