"""The supervisor's side of shared pools: one set of workers for every front process.

With `processes` > 1 the fronts share the size and image pools the supervisor
owns, so one image is decoded once (identifier affinity holds across fronts)
and the workers and their decoded images are not multiplied by the fronts.
Each front talks over its own socket pair (`pool_frames`); its requests run
concurrently, and a front that goes away costs only its own tasks: those
still waiting leave their queues, running ones finish unheard.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle
import socket
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from . import pool_frames as frames
from .background import cancel_and_wait
from .errors import ServerError
from .workers import Job, WorkerPool

logger = logging.getLogger(__name__)

# How often each front gets a snapshot of the pools (its /health and pids).
STATUS_EVERY = 0.5


class PoolBroker:
    def __init__(self, pools: Mapping[str, WorkerPool], *, status_every: float = STATUS_EVERY):
        self._pools = pools
        self._status_every = status_every
        self._fronts: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def serve(self, sock: socket.socket) -> None:
        """Serve a front over `sock` (our end of its pair) until it goes away."""
        task = asyncio.ensure_future(self._serve(sock))
        self._fronts.add(task)
        task.add_done_callback(self._fronts.discard)

    async def close(self) -> None:
        """Stop serving every front (their pending requests are dropped)."""
        for task in list(self._fronts):
            await cancel_and_wait(task)

    def snapshot(self) -> dict[str, tuple[Any, list[int]]]:
        return {name: (pool.status(), pool.pids) for name, pool in self._pools.items()}

    async def _serve(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=frames.STREAM_LIMIT)
        work: dict[int, asyncio.Future[Any]] = {}
        pusher = asyncio.ensure_future(self._push_status(writer))
        self._writers.add(writer)
        try:
            while True:
                try:
                    message = await frames.read(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the front exited
                except Exception:
                    logger.exception("pool broker: unreadable message; dropping that front")
                    return
                if message[0] == frames.CANCEL:
                    waiting = work.get(message[1])
                    if waiting is not None:
                        waiting.cancel()
                    continue
                if message[0] == frames.DESCRIBED:
                    self._tell_others(writer, message)
                    continue
                request_id = message[1]
                if message[0] == frames.SUBMIT:
                    # The hot path, without a task: queued now, answered from its callback.
                    outcome = self._submit(message)
                else:
                    outcome = asyncio.ensure_future(self._answer(writer, message))
                work[request_id] = outcome
                outcome.add_done_callback(functools.partial(_forget, work, request_id))
                if message[0] == frames.SUBMIT:
                    outcome.add_done_callback(functools.partial(_reply, writer, request_id))
        finally:
            self._writers.discard(writer)
            for waiting in work.values():
                waiting.cancel()  # waiting tasks leave their queues; running ones go unheard
            await cancel_and_wait(pusher)
            for task in [t for t in work.values() if isinstance(t, asyncio.Task)]:
                await cancel_and_wait(task)
            writer.close()

    def _submit(self, message: tuple[Any, ...]) -> asyncio.Future[Any]:
        _, _, name, payload, label, affinity, light, prefer = message
        try:
            return self._pools[name].queue_pickled(
                payload, label, affinity=affinity, light=light, prefer=prefer
            )
        except ServerError as error:  # refused at once (full queue, shutting down)
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(error)
            return refused

    async def _answer(self, writer: asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
        try:
            outcome, value = await self._run(message, writer)
        except ServerError as error:
            outcome, value = frames.ERROR, error
        except Exception:
            logger.exception("pool broker: cannot run %s", message[0])
            outcome, value = frames.ERROR, ServerError("internal error in the worker pools")
        try:
            data = frames.encode((frames.ANSWER, message[1], outcome, value))
        except Exception:
            logger.exception("pool broker: cannot send the answer of %s", message[0])
            unsendable = ServerError("internal error: unsendable answer")
            data = frames.encode((frames.ANSWER, message[1], frames.ERROR, unsendable))
        await _send(writer, data)

    async def _run(self, message: tuple[Any, ...], writer: asyncio.StreamWriter) -> tuple[str, Any]:
        kind, pool = message[0], self._pools[message[2]]
        if kind == frames.IF_IDLE:
            # Optional and small (decodes ahead): unpickled here to reuse the pool's own rule.
            jobs = []
            for payload, affinity, light, hold in message[3]:
                fn, args = pickle.loads(payload)
                jobs.append(Job(fn, args, affinity, light, hold))
            return (frames.RESULT if await pool.submit_if_idle(*jobs) else frames.SKIPPED), None
        if kind == frames.BROADCAST:
            fn, args = pickle.loads(message[3])
            return frames.RESULT, await pool.broadcast(fn, *args)
        if kind == frames.READY:
            await pool.wait_ready()
            # Before the answer: the front's /health, asked next, sees its workers live.
            await _send(writer, frames.encode((frames.STATUS, self.snapshot())))
            return frames.RESULT, None
        raise ValueError(f"unknown pool request {kind!r}")

    def _tell_others(self, sender: asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
        """A note for every other front; small and rare (a session's first info.json)."""
        data = frames.encode(message)
        for writer in self._writers:
            if writer is not sender and not writer.is_closing():
                writer.write(data)

    async def _push_status(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await _send(writer, frames.encode((frames.STATUS, self.snapshot())))
            await asyncio.sleep(self._status_every)


def _forget(work: dict[int, asyncio.Future[Any]], key: int, _: asyncio.Future[Any]) -> None:
    work.pop(key, None)


def _reply(writer: asyncio.StreamWriter, request_id: int, outcome: asyncio.Future[Any]) -> None:
    """The answer of a submitted task, written as soon as it is known (never awaited:
    the queues bound what one front can have waiting)."""
    if outcome.cancelled() or writer.is_closing():
        return  # its front asked to cancel it, or went away
    error = outcome.exception()
    answer: tuple[Any, ...]
    if error is None:
        answer = (frames.ANSWER, request_id, frames.RESULT, outcome.result())
    elif isinstance(error, ServerError):
        answer = (frames.ANSWER, request_id, frames.ERROR, error)
    else:
        logger.error("pool broker: a task failed: %r", error)
        answer = (frames.ANSWER, request_id, frames.ERROR, ServerError("internal error"))
    try:
        data = frames.encode(answer)
    except Exception:
        logger.exception("pool broker: cannot send the answer of request %s", request_id)
        unsendable = ServerError("internal error: unsendable answer")
        data = frames.encode((frames.ANSWER, request_id, frames.ERROR, unsendable))
    writer.write(data)


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write one whole message (never interleaved: one write); a front gone is no error."""
    if writer.is_closing():
        return
    writer.write(data)
    with suppress(ConnectionError):
        await writer.drain()
