"""A front's side of shared pools: the supervisor's workers, used like a `WorkerPool`.

One `PoolLink` per front carries the requests of both pools over the front's
socket (`pool_frames`), and the notes fronts pass each other about viewers'
sessions; a `RemotePool` is one pool seen through it. Errors
raised in the workers come back as the same `ServerError` types, so the HTTP
statuses are those of a local pool. A lost link fails every request with
`Unavailable` (503) at once: nothing waits for an answer that cannot come.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

from . import pool_frames as frames
from .background import cancel_and_wait
from .config import Settings
from .errors import Unavailable
from .workers import Job, PoolStatus, pickled_task

T = TypeVar("T")
logger = logging.getLogger(__name__)


class PoolLink:
    """This front's stream to the supervisor's pools: requests out; answers and snapshots in."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._open = asyncio.Event()  # connected, or lost
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[tuple[str, Any]]] = {}
        self._users = 0
        self.lost: str | None = None  # why requests fail now
        self.snapshot: dict[str, tuple[PoolStatus, list[int]]] = {}
        self._listener: Callable[[str], None] | None = None

    def start(self) -> None:
        """Connect, once for all its pools; call from within the running event loop."""
        self._users += 1
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())

    async def release(self) -> None:
        """One pool is done with the link; the last one closes it."""
        self._users -= 1
        if self._users <= 0 and self._reading is not None:
            self._lose("the server is shutting down")
            await cancel_and_wait(self._reading)

    def announce(self, key: str) -> None:
        """Tell the other fronts that a viewer described image `key` here (`SessionPeers`)."""
        if self.lost is None and self._writer is not None and not self._writer.is_closing():
            self._writer.write(frames.encode((frames.DESCRIBED, key)))

    def listen(self, described: Callable[[str], None]) -> None:
        """Have `described(key)` called for the images other fronts announce."""
        self._listener = described

    async def request(self, kind: str, *fields: Any) -> tuple[str, Any]:
        """Send `(kind, id, *fields)`; its answer's (outcome, value)."""
        await self._open.wait()
        if self.lost is not None or self._writer is None:
            raise Unavailable(self.lost or "the worker pools are unreachable")
        request_id = next(self._ids)
        answer: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        writer = self._writer
        try:
            writer.write(frames.encode((kind, request_id, *fields)))
            await writer.drain()
            return await answer
        except ConnectionError:
            raise Unavailable("the worker pools are unreachable") from None
        except asyncio.CancelledError:
            if self.lost is None and not writer.is_closing():
                writer.write(frames.encode((frames.CANCEL, request_id)))
            raise
        finally:
            self._pending.pop(request_id, None)

    async def _read(self) -> None:
        why = "the worker pools are unreachable"
        try:
            reader, self._writer = await asyncio.open_unix_connection(
                sock=self._sock, limit=frames.STREAM_LIMIT
            )
            self._open.set()
            while True:
                message = await frames.read(reader)
                if message[0] == frames.STATUS:
                    self.snapshot = message[1]
                    continue
                if message[0] == frames.DESCRIBED:
                    if self._listener is not None:
                        self._listener(message[1])
                    continue
                _, request_id, outcome, value = message
                answer = self._pending.get(request_id)
                if answer is not None and not answer.done():
                    answer.set_result((outcome, value))
        except (asyncio.IncompleteReadError, OSError) as error:
            logger.error("lost the worker pools of the supervisor (%s)", type(error).__name__)
        except Exception:
            logger.exception("unreadable message from the supervisor: its pools are dropped")
        except asyncio.CancelledError:
            why = "the server is shutting down"
            raise
        finally:
            self._lose(why)

    def _lose(self, why: str) -> None:
        if self.lost is not None:
            return
        self.lost = why
        self._open.set()
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(Unavailable(why))
        if self._writer is not None:
            self._writer.close()
        else:
            self._sock.close()


class RemotePool:
    """One of the supervisor's pools, from a front. The interface of `WorkerPool`.

    `status()` and `pids` are the latest snapshot the supervisor sent (twice a
    second, and when the pool became ready): they may be that old.
    """

    def __init__(self, name: str, size: int, link: PoolLink) -> None:
        self.name = name
        self.size = size
        self._link = link
        self._started = False
        self._closing = False
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()

    def start(self) -> None:
        if self._started or self._closing:
            raise RuntimeError(f"worker pool {self.name!r} was already started or closed")
        self._started = True
        self._link.start()

    async def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        affinity: str | None = None,
        light: bool = False,
        prefer: str | None = None,
    ) -> T:
        payload, label = pickled_task(self.name, fn, args)
        _, value = await self._call(frames.SUBMIT, bytes(payload), label, affinity, light, prefer)
        return cast(T, value)

    async def submit_if_idle(self, *jobs: Job) -> bool:
        """Queue ``jobs`` only if every shared worker is idle (the supervisor decides)."""
        sent = [
            (
                bytes(pickled_task(self.name, job.fn, job.args)[0]),
                job.affinity,
                job.light,
                job.hold,
            )
            for job in jobs
        ]
        outcome, _ = await self._call(frames.IF_IDLE, sent)
        return outcome != frames.SKIPPED

    async def broadcast(self, fn: Callable[..., T], *args: Any) -> list[T | None]:
        payload, _ = pickled_task(self.name, fn, args)
        _, value = await self._call(frames.BROADCAST, bytes(payload))
        return cast(list[T | None], value)

    async def wait_ready(self) -> None:
        await self._call(frames.READY)

    async def close(self, grace: float = 10.0) -> None:
        """Refuse new work, give this front's tasks `grace` seconds, then let go of the link.

        The shared pools themselves stay: the supervisor stops them.
        """
        if self._closing:
            return
        self._closing = True
        try:
            await asyncio.wait_for(self._drained.wait(), grace)
        except TimeoutError:
            logger.warning("pool %s: work left after %.1f s of grace", self.name, grace)
        if self._started:
            await self._link.release()

    @property
    def pids(self) -> list[int]:
        known = self._link.snapshot.get(self.name)
        return [] if known is None or self._link.lost else list(known[1])

    def status(self) -> PoolStatus:
        known = self._link.snapshot.get(self.name)
        if known is None or self._link.lost is not None:
            return PoolStatus(self.name, self.size, 0, 0, 0, 0, closing=True)
        return dataclasses.replace(known[0], closing=known[0].closing or self._closing)

    async def _call(self, kind: str, *fields: Any) -> tuple[str, Any]:
        if not self._started:
            raise RuntimeError(f"worker pool {self.name!r} is not started")
        if self._closing:
            raise Unavailable("the server is shutting down")
        self._in_flight += 1
        self._drained.clear()
        try:
            outcome, value = await self._link.request(kind, self.name, *fields)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._drained.set()
        if outcome == frames.ERROR:
            raise value
        return outcome, value


def remote_pools(settings: Settings, link: PoolLink) -> tuple[RemotePool, RemotePool]:
    """The size and image pools of the supervisor, through this front's link."""
    return (
        RemotePool("size", settings.size_pool_size, link),
        RemotePool("image", settings.image_pool_size, link),
    )
