"""Fixed-size process pools driven from the front process's asyncio event loop.

Each worker is a spawned process with one duplex pipe and one task in flight;
the front keeps a bounded deque of waiting tasks per worker. Work for one
identifier goes to one worker (``affinity``, placed by `placement.Placement`)
so that worker's in-memory cache of decoded images is reused. A worker that
dies or runs past its time limit costs only the task it was running: it is
replaced and its queue carries on.
Replies and deaths arrive through ``loop.add_reader`` on the pipe and on the
process sentinel: no helper threads, no polling.

Unlike ``concurrent.futures.ProcessPoolExecutor``, one dead worker does not
break every pending task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import pickle
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from types import TracebackType
from typing import Any, TypeVar, cast

from iiif_server.errors import Overloaded, ServerError, TaskTimeout, Unavailable, WorkerFailed
from iiif_server.placement import Placement
from iiif_server.worker_process import ERROR as _ERROR
from iiif_server.worker_process import READY as _READY
from iiif_server.worker_process import RESULT as _RESULT
from iiif_server.worker_process import worker_main as _worker_main

__all__ = ["Job", "PoolStatus", "WorkerPool", "pickled_task"]

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Respawn delay after a death with no task to blame (while starting, or idle): it doubles.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 5.0
# After close()'s grace, how long idle workers get to exit on their own before SIGKILL.
_EXIT_WAIT = 1.0


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot for a status page."""

    name: str
    size: int
    live: int  # workers started and ready for work
    busy: int  # workers with a task in flight
    queued: int  # tasks waiting in the front process
    restarts: int  # workers started since start() to replace others
    closing: bool


@dataclass(eq=False)
class _Task:
    payload: bytes | memoryview  # (fn, args), pickled at submit so bad arguments fail there
    label: str
    future: asyncio.Future[Any]


@dataclass(frozen=True)
class _Route:
    """How a task is placed: see `WorkerPool.submit`."""

    affinity: str | None
    light: bool
    prefer: str | None


@dataclass(eq=False)
class _Held:
    """An optional job of `submit_if_idle` waiting out its hold, and the tasks waiting for it."""

    payload: bytes | memoryview
    label: str
    light: bool
    timer: asyncio.TimerHandle | None = None
    waiting: list[tuple[_Task, _Route]] = field(default_factory=list)


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False  # its initializer has run
    dying: bool = False  # its pipe is no longer read; only its exit is awaited
    exited: bool = False  # reaped; the process object is closed
    timed_out: bool = False
    task: _Task | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _Slot:
    index: int
    pending: deque[_Task] = field(default_factory=deque)
    worker: _Worker | None = None
    failures: int = 0  # deaths with no task to blame since the last answer; drives backoff
    respawn: asyncio.TimerHandle | None = None


class WorkerPool:
    """``size`` worker processes, each running one task at a time.

    Each worker has up to ``max_queue`` tasks waiting for it beyond the one it
    runs; a full queue makes :meth:`submit` raise ``Overloaded`` at once.
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
        # Not "fork": the front process has threads and an event loop that a fork would copy.
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(size)]
        self._placement = Placement(size)  # affinity key -> worker index
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restarts = 0
        self._start_failures = 0
        self._closing = False  # close() was called: no new work
        self._stopped = False  # close()'s grace is over: no respawns, everything is let go
        self._closed = asyncio.Event()
        self._waiters: set[asyncio.Future[None]] = set()  # coroutines in _until()
        # Optional jobs waiting out their hold (`submit_if_idle`), by affinity key: at
        # most the jobs of one call, as the next call drops them.
        self._held: dict[str, _Held] = {}

    # ---- public API ---------------------------------------------------------

    def start(self) -> None:
        """Spawn the workers; call from within the running event loop."""
        if self._loop is not None or self._closing:
            raise RuntimeError(f"worker pool {self.name!r} was already started or closed")
        self._loop = asyncio.get_running_loop()
        for slot in self._slots:
            self._spawn(slot)

    async def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        affinity: str | None = None,
        light: bool = False,
        prefer: str | None = None,
    ) -> T:
        """Run ``fn(*args)`` in a worker; return its result or raise its error.

        ``fn`` must be a module-level function. With ``affinity``, every task
        with the same key goes to the same worker. A ``light`` key (a few
        small tasks) is not counted when new keys are spread over the workers.
        ``prefer``: a key to use instead of ``affinity`` if a task of it was
        queued lately (a decode ahead that made what this task needs).
        """
        payload, label = pickled_task(self.name, fn, args)
        return cast(
            T,
            await self.submit_pickled(
                payload, label, affinity=affinity, light=light, prefer=prefer
            ),
        )

    async def submit_if_idle(self, *jobs: Job) -> bool:
        """Queue ``jobs`` (optional work) only if every worker is idle now; False: skipped.

        True once they are queued, together (each may take a worker of its own),
        before any task submitted after this call; they run on, their results
        and errors dropped.

        A job with a ``hold`` is queued only after that many seconds, and is
        dropped if more optional work is offered meanwhile: several sessions
        starting at once keep every worker busy, and a decode that makes one of
        them start sooner then costs the others more. Tasks that prefer its key
        (they want what it makes) wait with it, and follow it to its worker.
        """
        self._drop_held()
        if not self.idle():
            return False
        for job in jobs:
            payload, label = pickled_task(self.name, job.fn, job.args)
            if job.hold > 0 and job.affinity is not None:
                held = _Held(payload, label, job.light)
                held.timer = self._event_loop.call_later(job.hold, self._release, job.affinity)
                self._held[job.affinity] = held
                continue
            queued = self.queue_pickled(payload, label, affinity=job.affinity, light=job.light)
            queued.add_done_callback(_drop_outcome)
        return True

    async def submit_pickled(
        self,
        payload: bytes | memoryview,
        label: str,
        *,
        affinity: str | None = None,
        light: bool = False,
        prefer: str | None = None,
    ) -> Any:
        """:meth:`submit` of a ``(fn, args)`` pickled already (by a front, see pool_broker)."""
        # Cancelling the caller cancels the future, which takes a waiting task back.
        return await self.queue_pickled(
            payload, label, affinity=affinity, light=light, prefer=prefer
        )

    def queue_pickled(
        self,
        payload: bytes | memoryview,
        label: str,
        *,
        affinity: str | None = None,
        light: bool = False,
        prefer: str | None = None,
    ) -> asyncio.Future[Any]:
        """The task queued now (in the order of the calls), and its outcome: cancelled,
        a waiting task leaves its queue and a running one finishes unheard."""
        if self._loop is None:
            raise RuntimeError(f"worker pool {self.name!r} is not started")
        if self._closing:
            raise Unavailable("the server is shutting down")
        task = _Task(payload, label, self._loop.create_future())
        route = _Route(affinity, light, prefer)
        held = None if prefer is None else self._held.get(prefer)
        if held is not None:
            held.waiting.append((task, route))
        else:
            self._place(task, route)
        return task.future

    def _place(self, task: _Task, route: _Route) -> None:
        """Put `task` in its worker's queue (Overloaded if that is full)."""
        affinity, light = route.affinity, route.light
        if route.prefer is not None:
            preferred_light = self._placement.preferred(route.prefer, self._event_loop.time())
            if preferred_light is not None:
                affinity, light = route.prefer, preferred_light
        slot = self._choose(affinity, light)
        slot.pending.append(task)
        task.future.add_done_callback(functools.partial(self._withdraw, slot, task))
        self._dispatch(slot)

    def _withdraw(self, slot: _Slot, task: _Task, future: asyncio.Future[Any]) -> None:
        if future.cancelled() and task in slot.pending:
            slot.pending.remove(task)
            self._notify()

    def _release(self, key: str) -> None:
        """The hold of `key`'s job is over: queue it, then the tasks that waited for it."""
        held = self._held.pop(key)
        try:
            queued = self.queue_pickled(held.payload, held.label, affinity=key, light=held.light)
            queued.add_done_callback(_drop_outcome)
        except ServerError:
            pass  # a full queue: optional work is the first to go
        self._place_waiting(held)

    def _drop_held(self) -> None:
        """Drop the jobs on hold; the tasks that waited for them go where they would have."""
        dropped = list(self._held.values())
        self._held.clear()
        for held in dropped:
            if held.timer is not None:
                held.timer.cancel()
            self._place_waiting(held)

    def _place_waiting(self, held: _Held) -> None:
        for task, route in held.waiting:
            if task.future.done():  # cancelled while it waited
                continue
            try:
                if self._closing:
                    raise Unavailable("the server is shutting down")
                self._place(task, route)
            except ServerError as error:
                _fail(task, error)
        held.waiting.clear()

    def idle(self) -> bool:
        """Every worker ready, none running or waiting for a task: room for optional work."""
        return not self._held and all(
            not s.pending and s.worker is not None and s.worker.ready and s.worker.task is None
            for s in self._slots
        )

    async def broadcast(self, fn: Callable[..., T], *args: Any) -> list[T | None]:
        """Run ``fn(*args)`` once in every worker, after the tasks already queued for it.

        For what each worker keeps in memory (decoded images, counters). A worker
        that dies or times out meanwhile keeps nothing: its answer is None. The
        queue bound does not apply: a broadcast adds one task per worker.
        """
        if self._loop is None:
            raise RuntimeError(f"worker pool {self.name!r} is not started")
        if self._closing:
            raise Unavailable("the server is shutting down")
        label = getattr(fn, "__qualname__", repr(fn))
        payload = ForkingPickler.dumps((fn, args))
        sent: list[tuple[_Slot, _Task]] = []
        for slot in self._slots:
            task = _Task(payload, label, self._loop.create_future())
            slot.pending.append(task)
            sent.append((slot, task))
            self._dispatch(slot)
        try:
            answers = await asyncio.gather(
                *(task.future for _, task in sent), return_exceptions=True
            )
        except asyncio.CancelledError:
            for slot, task in sent:
                if task in slot.pending:
                    slot.pending.remove(task)
            self._notify()
            raise
        results: list[T | None] = []
        for answer in answers:
            if isinstance(answer, WorkerFailed | TaskTimeout):
                results.append(None)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                results.append(cast(T, answer))
        return results

    async def wait_ready(self) -> None:
        """Wait until every worker has run its initializer.

        Raises ``WorkerFailed`` if a worker dies while starting meanwhile.
        """
        failures = self._start_failures
        await self._until(
            lambda: (
                self._closing
                or self._start_failures != failures
                or all(s.worker is not None and s.worker.ready for s in self._slots)
            )
        )
        if self._closing:
            raise Unavailable("the server is shutting down")
        if self._start_failures != failures:
            raise WorkerFailed("a worker could not be started")

    async def close(self, grace: float = 10.0) -> None:
        """Refuse new work, give running and queued tasks ``grace`` seconds, then stop.

        Tasks unfinished after ``grace`` fail with ``Unavailable``. Every process
        is reaped, every pipe closed and every reader removed. A second call
        waits for the first.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._drop_held()  # what waited for a held job is queued work like any other
        self._closing = True
        try:
            if self._loop is not None:
                self._notify()
                if not await self._until(self._drained, grace):
                    logger.warning("pool %s: work left after %.1f s of grace", self.name, grace)
                await self._shut_down()
        finally:
            self._closed.set()

    @property
    def pids(self) -> list[int]:
        """Pids of the current workers not known to be dead, in worker index order."""
        return [
            w.process.pid
            for w in (s.worker for s in self._slots)
            if w is not None and not w.dying and w.process.pid is not None
        ]

    def status(self) -> PoolStatus:
        workers = [s.worker for s in self._slots if s.worker is not None and not s.worker.dying]
        return PoolStatus(
            name=self.name,
            size=self.size,
            live=sum(w.ready for w in workers),
            busy=sum(w.task is not None for w in workers),
            queued=sum(len(s.pending) for s in self._slots)
            + sum(len(held.waiting) for held in self._held.values()),
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

    # ---- choosing and dispatching ---------------------------------------------

    def _choose(self, affinity: str | None, light: bool = False) -> _Slot:
        if affinity is not None:
            tasks = [_load(s)[0] for s in self._slots]
            # Even a worker still starting: it will be ready long before a key's last task.
            index = self._placement.place(affinity, light, tasks, self._event_loop.time())
            slot = self._slots[index]
            if len(slot.pending) >= self.max_queue:
                raise Overloaded("the worker for this image is busy; try again shortly")
            return slot
        open_slots = [s for s in self._slots if len(s.pending) < self.max_queue]
        if not open_slots:
            raise Overloaded("all workers are busy; try again shortly")
        return min(open_slots, key=_load)

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
                # It died before taking the task, which never ran: it waits for the replacement.
                slot.pending.appendleft(task)
                self._kill(worker)
                return
            worker.task = task
            worker.timer = self._event_loop.call_later(self.task_timeout, self._on_timeout, worker)
            return

    @property
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start() was not called"
        return self._loop

    # ---- worker lifecycle -------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
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
            theirs.close()  # the child's end: only the child may hold it
        worker = _Worker(process, ours)
        slot.worker = worker
        self._event_loop.add_reader(ours.fileno(), self._on_readable, slot, worker)
        self._event_loop.add_reader(process.sentinel, self._on_exit, slot, worker)

    def _respawn(self, slot: _Slot) -> None:
        slot.respawn = None
        self._restarts += 1
        try:
            self._spawn(slot)
        except Exception:
            logger.exception("pool %s: cannot start worker %d", self.name, slot.index)
            self._start_failed(slot)
            self._schedule_respawn(slot)
            self._notify()

    def _schedule_respawn(self, slot: _Slot) -> None:
        if self._stopped or (self._closing and not slot.pending):
            return
        delay = 0.0 if slot.failures == 0 else _BACKOFF_FIRST * 2 ** (slot.failures - 1)
        slot.respawn = self._event_loop.call_later(min(delay, _BACKOFF_MAX), self._respawn, slot)

    def _start_failed(self, slot: _Slot) -> None:
        slot.failures += 1
        self._start_failures += 1
        while slot.pending:
            _fail(slot.pending.popleft(), WorkerFailed("the worker could not be started"))

    def _stop_listening(self, worker: _Worker) -> None:
        if not worker.dying:
            worker.dying = True
            self._event_loop.remove_reader(worker.conn.fileno())
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    def _kill(self, worker: _Worker) -> None:
        """SIGKILL a worker; its sentinel then reports the exit to `_on_exit`."""
        self._stop_listening(worker)
        if not worker.exited:
            worker.process.kill()

    def _on_timeout(self, worker: _Worker) -> None:
        task, worker.task, worker.timer = worker.task, None, None
        worker.timed_out = True
        if task is not None:
            logger.warning("pool %s: %s ran too long; killing its worker", self.name, task.label)
            _fail(task, TaskTimeout("the image took too long to make"))
        self._kill(worker)

    def _on_readable(self, slot: _Slot, worker: _Worker) -> None:
        if worker.dying:
            return
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._stop_listening(worker)  # it is exiting; `_on_exit` follows
            return
        kind, value = self._decode(data)
        if kind == _READY:
            worker.ready = True
        else:
            task, worker.task = worker.task, None
            if worker.timer is not None:
                worker.timer.cancel()
                worker.timer = None
            slot.failures = 0
            if task is not None:
                _settle(task, kind, value)
        self._dispatch(slot)
        self._notify()

    def _decode(self, data: bytes) -> tuple[str, Any]:
        try:
            kind, value = pickle.loads(data)
        except Exception:
            logger.exception("pool %s: unreadable answer from a worker", self.name)
            return _ERROR, ServerError("internal error: the worker's answer was unreadable")
        return kind, value

    def _on_exit(self, slot: _Slot, worker: _Worker) -> None:
        self._event_loop.remove_reader(worker.process.sentinel)
        self._stop_listening(worker)
        task, worker.task = worker.task, None
        if task is not None and not worker.conn.closed:
            try:  # an answer sent just before death may still be in the pipe
                if worker.conn.poll():
                    _settle(task, *self._decode(worker.conn.recv_bytes()))
            except (EOFError, OSError):
                pass
        worker.conn.close()
        worker.process.join()  # the sentinel fired: this does not block
        exitcode = worker.process.exitcode
        worker.process.close()
        worker.exited = True
        if slot.worker is worker:
            slot.worker = None
        if not self._stopped:
            what = ""
            if not worker.ready:
                self._start_failed(slot)
                what = "while starting"
            elif task is not None:
                _fail(task, WorkerFailed("the worker died while making the image"))
                what = f"running {task.label}"
            elif not worker.timed_out:
                slot.failures += 1  # nobody to blame: a worker that keeps dying backs off
                what = "while idle"
            if what:
                logger.error(
                    "pool %s: worker %d died %s (exit %s)", self.name, slot.index, what, exitcode
                )
            self._schedule_respawn(slot)
        self._notify()

    # ---- waiting and shutting down ----------------------------------------------

    def _notify(self) -> None:
        """Wake the coroutines in `_until` to re-check their condition."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``condition()`` holds; False if ``timeout`` passes first."""
        loop = self._event_loop
        deadline = None if timeout is None else loop.time() + timeout
        while not condition():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            changed = loop.create_future()
            self._waiters.add(changed)
            try:
                await asyncio.wait_for(changed, remaining)
            except TimeoutError:
                return condition()
            finally:
                self._waiters.discard(changed)
        return True

    def _drained(self) -> bool:
        return all(
            not s.pending and (s.worker is None or s.worker.task is None) for s in self._slots
        )

    async def _shut_down(self) -> None:
        self._stopped = True
        gone = Unavailable("the server is shutting down")
        workers = [s.worker for s in self._slots if s.worker is not None]
        for slot in self._slots:
            if slot.respawn is not None:
                slot.respawn.cancel()
            while slot.pending:
                _fail(slot.pending.popleft(), gone)
        for worker in workers:
            if worker.task is not None:
                _fail(worker.task, gone)
                self._kill(worker)
            # Closing our end makes an idle worker's recv() see EOF and exit cleanly.
            self._stop_listening(worker)
            worker.conn.close()
        if await self._until(lambda: all(w.exited for w in workers), _EXIT_WAIT):
            return
        for worker in workers:
            self._kill(worker)
        if await self._until(lambda: all(w.exited for w in workers), 5 * _EXIT_WAIT):
            return
        for worker in workers:  # stuck in the kernel: stop watching it
            if not worker.exited:
                logger.error("pool %s: pid %s will not die", self.name, worker.process.pid)
                self._event_loop.remove_reader(worker.process.sentinel)


@dataclass(frozen=True)
class Job:
    """One task of :meth:`WorkerPool.submit_if_idle`: ``fn(*args)`` and how to place it."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    affinity: str | None = None
    light: bool = False
    hold: float = 0.0  # seconds to wait before queuing it (see `submit_if_idle`)


def pickled_task(
    pool: str, fn: Callable[..., Any], args: tuple[Any, ...]
) -> tuple[bytes | memoryview, str]:
    """``(fn, args)`` pickled for a worker, and a label for logs; a ServerError if it cannot be."""
    label = getattr(fn, "__qualname__", repr(fn))
    try:
        return ForkingPickler.dumps((fn, args)), label
    except Exception as exc:
        logger.exception("pool %s: cannot pickle task %s", pool, label)
        raise ServerError("internal error: task cannot be sent to a worker") from exc


def _load(slot: _Slot) -> tuple[int, bool, int]:
    """Sort key for choosing a worker without affinity: least work, then ready, then index."""
    worker = slot.worker
    running = worker is not None and worker.task is not None
    ready = worker is not None and worker.ready and not worker.dying
    return (len(slot.pending) + running, not ready, slot.index)


def _drop_outcome(future: asyncio.Future[Any]) -> None:
    """Optional work: its result or error is not wanted (retrieved, so never logged)."""
    if not future.cancelled():
        future.exception()


def _settle(task: _Task, kind: str, value: Any) -> None:
    if task.future.done():  # the caller was cancelled: the answer is dropped
        return
    if kind == _RESULT:
        task.future.set_result(value)
    else:
        task.future.set_exception(value)


def _fail(task: _Task, error: ServerError) -> None:
    if not task.future.done():
        task.future.set_exception(error)
