"""Fixed-size process pools driven from the front process's asyncio event loop.

Each worker runs one task at a time (`worker_lifecycle` runs the processes);
the pool keeps a bounded deque of waiting tasks per worker. Work for one
identifier goes to one worker (``affinity``, placed by `placement.Placement`)
so that worker's in-memory cache of decoded images is reused. A worker that
dies or runs past its time limit costs only the task it was running.

Unlike ``concurrent.futures.ProcessPoolExecutor``, one dead worker does not
break every pending task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from types import TracebackType
from typing import Any, TypeVar, cast

from iiif_server.errors import Overloaded, ServerError, TaskTimeout, Unavailable, WorkerFailed
from iiif_server.placement import Placement
from iiif_server.pool_tasks import (
    Held,
    Job,
    PoolStatus,
    Route,
    Task,
    drop_outcome,
    fail,
    pickled_task,
)
from iiif_server.worker_lifecycle import Slot, WorkerLifecycle, load

__all__ = ["Job", "PoolStatus", "WorkerPool", "pickled_task"]

T = TypeVar("T")
logger = logging.getLogger(__name__)


class WorkerPool(WorkerLifecycle):
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
        self._slots = [Slot(i) for i in range(size)]
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
        self._held: dict[str, Held] = {}

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
                held = Held(payload, label, job.light)
                held.timer = self._event_loop.call_later(job.hold, self._release, job.affinity)
                self._held[job.affinity] = held
                continue
            queued = self.queue_pickled(payload, label, affinity=job.affinity, light=job.light)
            queued.add_done_callback(drop_outcome)
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
        a waiting task leaves its queue and a running one finishes unheard. A task
        that prefers the key of a job on hold is queued behind it when it is."""
        if self._loop is None:
            raise RuntimeError(f"worker pool {self.name!r} is not started")
        if self._closing:
            raise Unavailable("the server is shutting down")
        task = Task(payload, label, self._loop.create_future())
        route = Route(affinity, light, prefer)
        held = None if prefer is None else self._held.get(prefer)
        if held is not None:
            held.waiting.append((task, route))
        else:
            self._place(task, route)
        return task.future

    def _place(self, task: Task, route: Route) -> None:
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

    def _withdraw(self, slot: Slot, task: Task, future: asyncio.Future[Any]) -> None:
        if future.cancelled() and task in slot.pending:
            slot.pending.remove(task)
            self._notify()

    def _release(self, key: str) -> None:
        """The hold of `key`'s job is over: queue it, then the tasks that waited for it."""
        held = self._held.pop(key)
        try:
            queued = self.queue_pickled(held.payload, held.label, affinity=key, light=held.light)
            queued.add_done_callback(drop_outcome)
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

    def _place_waiting(self, held: Held) -> None:
        for task, route in held.waiting:
            if task.future.done():  # cancelled while it waited
                continue
            try:
                if self._closing:
                    raise Unavailable("the server is shutting down")
                self._place(task, route)
            except ServerError as error:
                fail(task, error)
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
        sent: list[tuple[Slot, Task]] = []
        for slot in self._slots:
            task = Task(payload, label, self._loop.create_future())
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

    def _choose(self, affinity: str | None, light: bool = False) -> Slot:
        if affinity is not None:
            tasks = [load(s)[0] for s in self._slots]
            # Even a worker still starting: it will be ready long before a key's last task.
            index = self._placement.place(affinity, light, tasks, self._event_loop.time())
            slot = self._slots[index]
            if len(slot.pending) >= self.max_queue:
                raise Overloaded("the worker for this image is busy; try again shortly")
            return slot
        open_slots = [s for s in self._slots if len(s.pending) < self.max_queue]
        if not open_slots:
            raise Overloaded("all workers are busy; try again shortly")
        return min(open_slots, key=load)
