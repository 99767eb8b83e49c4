"""Fixed-size process pools driven from the front process's asyncio event loop.

Each worker is a spawned process with one duplex pipe and one task in flight;
the front keeps a bounded deque of waiting tasks per worker. Work for one
identifier goes to one worker (``affinity``) so that worker's in-memory cache
of decoded images is reused. A worker that dies or runs past its time limit
costs only the task it was running: it is replaced and its queue carries on.
Death and replies are noticed through ``loop.add_reader`` on the pipe and on
the process sentinel, so there are no helper threads and no polling.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import signal
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from types import TracebackType
from typing import Any, TypeVar, cast

from iiif_server.errors import (
    Overloaded,
    ServerError,
    TaskTimeout,
    Unavailable,
    WorkerFailed,
)

__all__ = ["PoolStatus", "WorkerPool"]

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Messages from a worker: (kind, value).
_READY = "ready"
_RESULT = "result"
_ERROR = "error"

# Respawn delays after a worker that died without a task to blame (at start or idle).
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
# After close()'s grace, how long idle workers get to exit on their own before SIGKILL.
_EXIT_WAIT = 1.0


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot for a status page: counts only, cheap to take."""

    name: str
    size: int
    live: int  # workers started and ready for work
    busy: int  # workers with a task in flight
    queued: int  # tasks waiting in the front process
    restarts: int  # workers replaced since start()
    closing: bool


@dataclass(eq=False)
class _Task:
    payload: bytes | memoryview  # (fn, args), pickled at submit so bad arguments fail there
    label: str
    future: asyncio.Future[Any]


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    dying: bool = False  # no longer listened to; only its exit is still awaited
    timed_out: bool = False
    task: _Task | None = None
    timer: asyncio.TimerHandle | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Slot:
    index: int
    pending: deque[_Task] = field(default_factory=deque)
    worker: _Worker | None = None
    failures: int = 0  # consecutive deaths with no task to blame; drives the backoff
    respawn: asyncio.TimerHandle | None = None


class WorkerPool:
    """``size`` worker processes, each running one task at a time.

    ``max_queue`` bounds the tasks waiting for each worker (beyond the one it
    is running); a full queue makes :meth:`submit` raise ``Overloaded`` at once.
    """

    def __init__(
        self,
        name: str,
        size: int,
        *,
        task_timeout: float,
        max_queue: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if size < 1 or max_queue < 1 or task_timeout <= 0:
            raise ValueError("size and max_queue must be >= 1 and task_timeout > 0")
        self.name = name
        self.size = size
        self.task_timeout = task_timeout
        self.max_queue = max_queue
        self._initializer = initializer
        self._initargs = initargs
        # "spawn": the front process has threads and an event loop, which fork would copy.
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(size)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restarts = 0
        self._start_failures = 0
        self._closing = False  # close() called: no new work
        self._stopped = False  # close()'s grace is over: workers are being stopped
        self._closed = asyncio.Event()
        self._drained = asyncio.Event()
        self._waiters: set[asyncio.Future[None]] = set()  # wait_ready() callers

    # ---- public API -------------------------------------------------------

    def start(self) -> None:
        """Spawn the workers; call from within the running event loop."""
        if self._loop is not None or self._closing:
            raise RuntimeError(f"worker pool {self.name!r} was already started or closed")
        self._loop = asyncio.get_running_loop()
        for slot in self._slots:
            self._spawn(slot)

    async def submit(self, fn: Callable[..., T], *args: Any, affinity: str | None = None) -> T:
        """Run ``fn(*args)`` in a worker and return its result or raise its error."""
        if self._loop is None:
            raise RuntimeError(f"worker pool {self.name!r} is not started")
        if self._closing:
            raise Unavailable("the server is shutting down")
        slot = self._choose(affinity)
        label = getattr(fn, "__qualname__", repr(fn))
        try:
            payload = ForkingPickler.dumps((fn, args))
        except Exception as exc:
            logger.exception("pool %s: cannot send task %s to a worker", self.name, label)
            raise ServerError("internal error: task cannot be sent to a worker") from exc
        task = _Task(payload, label, self._loop.create_future())
        slot.pending.append(task)
        self._dispatch(slot)
        try:
            return cast(T, await task.future)
        except asyncio.CancelledError:
            # A waiting task just leaves its queue; a running one finishes unheard.
            if task in slot.pending:
                slot.pending.remove(task)
                self._note_progress()
            raise

    async def wait_ready(self) -> None:
        """Wait until every worker has started and run its initializer.

        Raises ``WorkerFailed`` if a worker dies while starting meanwhile.
        """
        start_failures = self._start_failures
        while not all(s.worker is not None and s.worker.ready for s in self._slots):
            if self._closing:
                raise Unavailable("the server is shutting down")
            if self._start_failures != start_failures:
                raise WorkerFailed("a worker could not be started")
            changed = self._running_loop.create_future()
            self._waiters.add(changed)
            try:
                await changed
            finally:
                self._waiters.discard(changed)

    async def close(self, grace: float = 10.0) -> None:
        """Refuse new work, give running and queued tasks ``grace`` seconds, then stop.

        Tasks still unfinished after ``grace`` fail with ``Unavailable``. Every
        process is reaped and every pipe and reader released. A second call
        just waits for the first.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._loop is None:
                return
            self._note_progress()
            self._notify()
            try:
                await asyncio.wait_for(self._drained.wait(), grace)
            except TimeoutError:
                logger.warning("pool %s: work left after %.1f s of grace", self.name, grace)
            await self._shut_down()
        finally:
            self._closed.set()

    @property
    def pids(self) -> list[int]:
        """Pids of the current, not known dead, workers in worker index order."""
        return [
            s.worker.process.pid
            for s in self._slots
            if s.worker is not None and not s.worker.dying and s.worker.process.pid is not None
        ]

    def status(self) -> PoolStatus:
        workers = [s.worker for s in self._slots if s.worker is not None and not s.worker.dying]
        return PoolStatus(
            name=self.name,
            size=self.size,
            live=sum(w.ready for w in workers),
            busy=sum(w.task is not None for w in workers),
            queued=sum(len(s.pending) for s in self._slots),
            restarts=self._restarts,
            closing=self._closing,
        )

    async def __aenter__(self) -> WorkerPool:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- choosing and dispatching ----------------------------------------

    def _choose(self, affinity: str | None) -> _Slot:
        if affinity is not None:
            slot = self._slots[zlib.crc32(affinity.encode("utf-8")) % self.size]
            if len(slot.pending) >= self.max_queue:
                raise Overloaded("the worker for this image is busy; try again shortly")
            return slot
        open_slots = [s for s in self._slots if len(s.pending) < self.max_queue]
        if not open_slots:
            raise Overloaded("all workers are busy; try again shortly")
        return min(open_slots, key=self._load)

    @staticmethod
    def _load(slot: _Slot) -> tuple[int, bool, int]:
        worker = slot.worker
        running = worker is not None and worker.task is not None
        ready = worker is not None and worker.ready and not worker.dying
        return (len(slot.pending) + running, not ready, slot.index)

    def _dispatch(self, slot: _Slot) -> None:
        worker = slot.worker
        if worker is None or not worker.ready or worker.dying or worker.task is not None:
            return
        while slot.pending:
            task = slot.pending.popleft()
            if task.future.done():  # cancelled while waiting
                continue
            try:
                worker.conn.send_bytes(task.payload)
            except OSError:
                # Died before it could take the task: the task never ran, so it waits
                # for the replacement.
                slot.pending.appendleft(task)
                self._kill(worker)
                return
            worker.task = task
            worker.timer = self._running_loop.call_later(
                self.task_timeout, self._on_timeout, slot, worker
            )
            return
        self._note_progress()

    @property
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    # ---- worker lifecycle -------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        slot.respawn = None
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(theirs, self._initializer, self._initargs),
            name=f"{self.name}-worker-{slot.index}",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # only the child may hold it, or its death would go unnoticed
        worker = _Worker(process, ours)
        slot.worker = worker
        loop = self._running_loop
        loop.add_reader(ours.fileno(), self._on_readable, slot, worker)
        loop.add_reader(process.sentinel, self._on_exit, slot, worker)

    def _respawn(self, slot: _Slot) -> None:
        slot.respawn = None
        self._restarts += 1
        try:
            self._spawn(slot)
        except Exception:
            logger.exception("pool %s: cannot start worker %d", self.name, slot.index)
            slot.failures += 1
            self._start_failures += 1
            self._notify()
            self._fail_pending(slot, WorkerFailed("the worker could not be started"))
            self._schedule_respawn(slot)

    def _schedule_respawn(self, slot: _Slot) -> None:
        if self._stopped or (self._closing and not slot.pending):
            return
        delay = 0.0 if slot.failures == 0 else _BACKOFF_FIRST * 2 ** (slot.failures - 1)
        slot.respawn = self._running_loop.call_later(min(delay, _BACKOFF_MAX), self._respawn, slot)

    def _kill(self, worker: _Worker) -> None:
        """SIGKILL a worker; its sentinel then reports the exit to `_on_exit`."""
        self._stop_listening(worker)
        if not worker.exited.is_set():
            worker.process.kill()

    def _stop_listening(self, worker: _Worker) -> None:
        """Forget a worker's pipe and timer; only its exit is still awaited."""
        if not worker.dying:
            worker.dying = True
            self._running_loop.remove_reader(worker.conn.fileno())
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    def _on_timeout(self, slot: _Slot, worker: _Worker) -> None:
        task, worker.task, worker.timer = worker.task, None, None
        worker.timed_out = True
        if task is not None:
            logger.warning(
                "pool %s: %s ran past %.1f s; killing worker pid %s",
                self.name,
                task.label,
                self.task_timeout,
                worker.process.pid,
            )
            _fail(task, TaskTimeout("the image took too long to make"))
        self._kill(worker)

    def _on_readable(self, slot: _Slot, worker: _Worker) -> None:
        if worker.dying:
            return
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._stop_listening(worker)  # the worker is exiting; `_on_exit` cleans up
            return
        kind, value = self._decode(data)
        if kind == _READY:
            worker.ready = True
            self._notify()
        else:
            task, worker.task = worker.task, None
            if worker.timer is not None:
                worker.timer.cancel()
                worker.timer = None
            slot.failures = 0
            if task is not None:
                _settle(task, kind, value)
        self._dispatch(slot)

    def _decode(self, data: bytes) -> tuple[str, Any]:
        try:
            kind, value = pickle.loads(data)
        except Exception:
            logger.exception("pool %s: unreadable answer from a worker", self.name)
            return _ERROR, ServerError("internal error: the worker's answer was unreadable")
        return kind, value

    def _on_exit(self, slot: _Slot, worker: _Worker) -> None:
        self._running_loop.remove_reader(worker.process.sentinel)
        self._stop_listening(worker)
        task, worker.task = worker.task, None
        if task is not None and not worker.conn.closed:
            # An answer sent just before death may still be in the pipe.
            try:
                if worker.conn.poll():
                    _settle(task, *self._decode(worker.conn.recv_bytes()))
            except (EOFError, OSError):
                pass
        worker.conn.close()
        worker.process.join()
        exitcode = worker.process.exitcode
        worker.process.close()
        worker.exited.set()
        if slot.worker is worker:
            slot.worker = None
        self._notify()
        if self._stopped:
            return
        if not worker.ready:
            slot.failures += 1
            self._start_failures += 1
            logger.error(
                "pool %s: worker %d died while starting (exit code %s)",
                self.name,
                slot.index,
                exitcode,
            )
            self._fail_pending(slot, WorkerFailed("the worker could not be started"))
        elif task is not None and not task.future.done():
            logger.error(
                "pool %s: worker %d died running %s (exit code %s)",
                self.name,
                slot.index,
                task.label,
                exitcode,
            )
            _fail(task, WorkerFailed("the worker died while making the image"))
        elif task is None and not worker.timed_out:
            # Nobody to blame: count it so that a worker that keeps dying backs off.
            slot.failures += 1
            logger.warning(
                "pool %s: idle worker %d exited (exit code %s)", self.name, slot.index, exitcode
            )
        self._schedule_respawn(slot)
        self._note_progress()

    # ---- shutdown -----------------------------------------------------------

    def _notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _note_progress(self) -> None:
        if self._closing and all(
            not s.pending and (s.worker is None or s.worker.task is None) for s in self._slots
        ):
            self._drained.set()

    def _fail_pending(self, slot: _Slot, error: ServerError) -> None:
        while slot.pending:
            _fail(slot.pending.popleft(), error)

    async def _shut_down(self) -> None:
        self._stopped = True
        gone = Unavailable("the server is shutting down")
        workers: list[_Worker] = []
        for slot in self._slots:
            if slot.respawn is not None:
                slot.respawn.cancel()
                slot.respawn = None
            self._fail_pending(slot, gone)
            worker = slot.worker
            if worker is not None:
                workers.append(worker)
                busy = worker.task is not None
                if worker.task is not None:
                    _fail(worker.task, gone)
                # Closing our end makes an idle worker's recv() see EOF and exit cleanly.
                self._kill(worker) if busy else self._stop_listening(worker)
                worker.conn.close()
        if await _all_set([w.exited for w in workers], _EXIT_WAIT):
            return
        for worker in workers:
            if not worker.exited.is_set():
                worker.process.kill()
        if await _all_set([w.exited for w in workers], 5 * _EXIT_WAIT):
            return
        for worker in workers:  # unkillable (stuck in the kernel): stop watching it
            if not worker.exited.is_set():
                logger.error("pool %s: worker pid %s will not die", self.name, worker.process.pid)
                self._running_loop.remove_reader(worker.process.sentinel)


def _settle(task: _Task, kind: str, value: Any) -> None:
    if task.future.done():  # the caller was cancelled; the answer is dropped
        return
    if kind == _RESULT:
        task.future.set_result(value)
    else:
        task.future.set_exception(value)


def _fail(task: _Task, error: ServerError) -> None:
    if not task.future.done():
        task.future.set_exception(error)


async def _all_set(events: list[asyncio.Event], timeout: float | None) -> bool:
    if not events:
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    _, pending = await asyncio.wait(waiters, timeout=timeout)
    for waiter in pending:
        waiter.cancel()
    return not pending


# ---- the worker process ------------------------------------------------------


def _worker_main(
    conn: Connection, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """Run tasks from ``conn`` one at a time until the front closes its end."""
    # Ctrl-C reaches the whole process group; the front decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
    try:
        conn.send((_READY, None))
        while True:
            try:
                data = conn.recv_bytes()
            except EOFError:
                return
            conn.send_bytes(_run(data))
    except OSError:
        return  # the front went away


def _run(data: bytes) -> bytes | memoryview:
    """Run one pickled task and return the pickled reply, which always pickles."""
    label = "task"
    reply: tuple[str, Any]
    try:
        fn, args = pickle.loads(data)
        label = getattr(fn, "__qualname__", label)
        reply = (_RESULT, fn(*args))
    except ServerError as exc:
        reply = (_ERROR, exc)
    except Exception as exc:
        logger.exception("worker: %s failed", label)
        reply = (_ERROR, ServerError(f"internal error in worker ({type(exc).__name__})"))
    try:
        return ForkingPickler.dumps(reply)
    except Exception:
        logger.exception("worker: the answer of %s cannot be pickled", label)
        return ForkingPickler.dumps((_ERROR, ServerError("internal error: unsendable answer")))
