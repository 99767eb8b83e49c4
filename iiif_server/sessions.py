"""Deep-zoom sessions: which images a viewer is on, and the decodes started ahead of them.

A viewer asks for an image's info.json, then for its tiles. The first
info.json of a plain JPEG starts its decode when every image worker is idle:
the viewer's round trip to its first tile then hides the decode that tile
would wait for. Busy workers, or several such decodes that no tile followed
(a harvester reading info.json documents), start nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from cachetools import TTLCache

from .iiif.image import ImageInfo
from .iiif.request import ImageRequest
from .imaging.render import choose_scale, prepare, prepare_coarse
from .workers import Job

# How long after an info.json requests for its image count as a deep-zoom session.
SESSION_SECONDS = 60.0
# Decodes started by an info.json that no tile has followed yet (in the last
# session time): beyond this many, a harvester is reading info.json documents
# and no decode starts until a viewer asks for a tile of one of them.
MAX_UNUSED_PREPARED = 4
# With a second idle worker, the first JPEG tiles of a session (the coarsest
# levels) come from a decode reduced this many times in the DCT, made there
# while the full decode runs in the image's own worker.
COARSE_SCALE = 4
# Sources smaller than this (in pixels) decode whole fast enough on their own.
COARSE_MIN_PIXELS = 4_000_000
# The coarse decode waits this long, and is dropped if other sessions start
# meanwhile (workers busy with several images have no time for it); the first
# tile of its own session starts it at once.
COARSE_HOLD_SECONDS = 0.005
_SESSIONS_REMEMBERED = 4096


class IdleWorkers(Protocol):
    """What decoding ahead needs of the image pool (`service.TaskRunner` has it)."""

    size: int

    async def submit_if_idle(self, *jobs: Job) -> bool: ...


class SessionPeers(Protocol):
    """The other front processes (`processes` > 1), which one viewer's connections reach too."""

    def announce(self, key: str) -> None:
        """Tell them a viewer asked for the info.json of image `key` here."""
        ...

    def listen(self, described: Callable[[str], None]) -> None:
        """Have `described(key)` called for the images they announce."""
        ...


class ZoomSessions:
    """Images described lately (bounded, expiring) and their decodes ahead."""

    def __init__(self, image_pool: IdleWorkers) -> None:
        self._image_pool = image_pool
        # Images whose info.json was asked for lately: a deep-zoom viewer is on them.
        self._described: TTLCache[str, bool] = TTLCache(
            maxsize=_SESSIONS_REMEMBERED, ttl=SESSION_SECONDS
        )
        # Images decoded ahead by their info.json, until their first tile is asked for.
        self._prepared: TTLCache[str, bool] = TTLCache(
            maxsize=MAX_UNUSED_PREPARED, ttl=SESSION_SECONDS
        )
        self._preparing: set[asyncio.Future[None]] = set()  # referenced until done
        self._peers: SessionPeers | None = None

    def share(self, peers: SessionPeers) -> None:
        """Fronts sharing pools: a session's tiles count as such on every front.

        A browser's several connections to one viewer spread over the fronts; the
        front that answered the info.json also started the decode ahead.
        """
        self._peers = peers
        peers.listen(self._described_elsewhere)

    def described(self, key: str) -> bool:
        """Note that a viewer fetched image `key`'s info.json; True the first time
        in a session (a decode ahead may start)."""
        first = key not in self._described
        self._described[key] = True
        self._prepared.expire()
        if first and self._peers is not None:
            self._peers.announce(key)
        return first

    def in_session(self, key: str) -> bool:
        return key in self._described

    def followed(self, key: str) -> None:
        """A tile of image `key` was asked for: its decode ahead, if any, was used."""
        self._prepared.pop(key, None)

    def prepare(self, key: str, path: str, identity: str, info: ImageInfo) -> None:
        """Decode a plain JPEG ahead if every image worker is idle (see the module)."""
        if info.format != "JPEG" or len(self._prepared) >= MAX_UNUSED_PREPARED:
            return
        coarse = self._image_pool.size > 1 and info.width * info.height >= COARSE_MIN_PIXELS
        # With the coarse levels made elsewhere, this stops at the finest one below them.
        finest = COARSE_SCALE // 2 if coarse else None
        jobs = [Job(prepare, (path, identity, info, finest), affinity=key)]
        if coarse:
            # Every worker is idle: this goes to another than the one above; its other
            # tasks are the few coarse tiles (light).
            coarse_args = (path, identity, info, COARSE_SCALE)
            reduced = Job(
                prepare_coarse,
                coarse_args,
                affinity=coarse_key(key),
                light=True,
                hold=COARSE_HOLD_SECONDS,
            )
            jobs.append(reduced)
        # Marked now (undone if skipped): the next info.json counts it.
        self._prepared[key] = True
        self.start(self._prepare_if_idle(key, jobs))

    def start(self, work: Awaitable[None]) -> None:
        """Run `work` (a decode ahead, or what decides on one) in the background."""
        future = asyncio.ensure_future(work)
        self._preparing.add(future)
        future.add_done_callback(self._prepared_done)

    def preferred(self, key: str, info: ImageInfo, request: ImageRequest) -> str | None:
        """For a session's coarse JPEG tiles, the worker that decoded them ahead: the
        pool sends them there if it took that decode (it knows; fronts may not yet)."""
        if request.format == "jpg" and choose_scale(info, request) >= COARSE_SCALE:
            return coarse_key(key)
        return None

    async def _prepare_if_idle(self, key: str, jobs: list[Job]) -> None:
        if not await self._image_pool.submit_if_idle(*jobs):
            self._prepared.pop(key, None)  # busy workers: nothing started

    def _described_elsewhere(self, key: str) -> None:
        self._described[key] = True

    def _prepared_done(self, future: asyncio.Future[None]) -> None:
        self._preparing.discard(future)
        if not future.cancelled():
            future.exception()  # not reported: the tile that follows meets it again


def coarse_key(key: str) -> str:
    """The affinity key of an image's coarse levels decoded ahead."""
    return key + "\x00coarse"
