"""The processes behind a worker pool: started, fed, watched, replaced and stopped.

Each worker is a spawned process with one duplex pipe and one task in flight.
Replies and deaths arrive through ``loop.add_reader`` on the pipe and on the
process sentinel: no helper threads, no polling. A worker that dies or runs
past its time limit costs only the task it was running: it is replaced and
its queue carries on. `workers.WorkerPool` decides what each worker's queue
holds; `WorkerLifecycle` is its part that runs the processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from iiif_server.errors import ServerError, TaskTimeout, Unavailable, WorkerFailed
from iiif_server.pool_tasks import Task, fail, settle
from iiif_server.worker_process import ERROR, READY, worker_main

logger = logging.getLogger("iiif_server.workers")

# Respawn delay after a death with no task to blame (while starting, or idle): it doubles.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.1, 5.0
# After close()'s grace, how long idle workers get to exit on their own before SIGKILL.
_EXIT_WAIT = 1.0


@dataclass(eq=False)
class Worker:
    """One process of a slot, from its spawn until it is reaped."""

    process: BaseProcess
    conn: Connection
    ready: bool = False  # its initializer has run
    dying: bool = False  # its pipe is no longer read; only its exit is awaited
    exited: bool = False  # reaped; the process object is closed
    timed_out: bool = False
    task: Task | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class Slot:
    """A place in the pool: its queue, and the worker serving it (replaced when one dies)."""

    index: int
    pending: deque[Task] = field(default_factory=deque)
    worker: Worker | None = None
    failures: int = 0  # deaths with no task to blame since the last answer; drives backoff
    respawn: asyncio.TimerHandle | None = None


def load(slot: Slot) -> tuple[int, bool, int]:
    """Sort key for choosing a worker without affinity: least work, then ready, then index."""
    worker = slot.worker
    running = worker is not None and worker.task is not None
    ready = worker is not None and worker.ready and not worker.dying
    return (len(slot.pending) + running, not ready, slot.index)


class WorkerLifecycle:
    """The processes of a pool's slots; `workers.WorkerPool` sets these attributes."""

    name: str
    task_timeout: float
    _slots: list[Slot]
    _context: SpawnContext
    _initializer: Callable[..., None] | None
    _initargs: tuple[Any, ...]
    _loop: asyncio.AbstractEventLoop | None
    _restarts: int
    _start_failures: int
    _closing: bool  # no new work
    _stopped: bool  # close()'s grace is over: no respawns, everything is let go
    _waiters: set[asyncio.Future[None]]  # coroutines in _until()

    def _dispatch(self, slot: Slot) -> None:
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

    def _spawn(self, slot: Slot) -> None:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
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
        worker = Worker(process, ours)
        slot.worker = worker
        self._event_loop.add_reader(ours.fileno(), self._on_readable, slot, worker)
        # uvloop (libuv) makes a watched descriptor non-blocking; a 40 KB answer then
        # read before all of it is in the pipe would fail halfway, like a dead worker.
        os.set_blocking(ours.fileno(), True)
        self._event_loop.add_reader(process.sentinel, self._on_exit, slot, worker)

    def _respawn(self, slot: Slot) -> None:
        slot.respawn = None
        self._restarts += 1
        try:
            self._spawn(slot)
        except Exception:
            logger.exception("pool %s: cannot start worker %d", self.name, slot.index)
            self._start_failed(slot)
            self._schedule_respawn(slot)
            self._notify()

    def _schedule_respawn(self, slot: Slot) -> None:
        if self._stopped or (self._closing and not slot.pending):
            return
        delay = 0.0 if slot.failures == 0 else _BACKOFF_FIRST * 2 ** (slot.failures - 1)
        slot.respawn = self._event_loop.call_later(min(delay, _BACKOFF_MAX), self._respawn, slot)

    def _start_failed(self, slot: Slot) -> None:
        slot.failures += 1
        self._start_failures += 1
        while slot.pending:
            fail(slot.pending.popleft(), WorkerFailed("the worker could not be started"))

    def _stop_listening(self, worker: Worker) -> None:
        if not worker.dying:
            worker.dying = True
            self._event_loop.remove_reader(worker.conn.fileno())
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    def _kill(self, worker: Worker) -> None:
        """SIGKILL a worker; its sentinel then reports the exit to `_on_exit`."""
        self._stop_listening(worker)
        if not worker.exited:
            worker.process.kill()

    def _on_timeout(self, worker: Worker) -> None:
        task, worker.task, worker.timer = worker.task, None, None
        worker.timed_out = True
        if task is not None:
            logger.warning("pool %s: %s ran too long; killing its worker", self.name, task.label)
            fail(task, TaskTimeout("the image took too long to make"))
        self._kill(worker)

    def _on_readable(self, slot: Slot, worker: Worker) -> None:
        if worker.dying:
            return
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._stop_listening(worker)  # it is exiting; `_on_exit` follows
            return
        kind, value = self._decode(data)
        if kind == READY:
            worker.ready = True
        else:
            task, worker.task = worker.task, None
            if worker.timer is not None:
                worker.timer.cancel()
                worker.timer = None
            slot.failures = 0
            if task is not None:
                settle(task, kind, value)
        self._dispatch(slot)
        self._notify()

    def _decode(self, data: bytes) -> tuple[str, Any]:
        try:
            kind, value = pickle.loads(data)
        except Exception:
            logger.exception("pool %s: unreadable answer from a worker", self.name)
            return ERROR, ServerError("internal error: the worker's answer was unreadable")
        return kind, value

    def _on_exit(self, slot: Slot, worker: Worker) -> None:
        self._event_loop.remove_reader(worker.process.sentinel)
        self._stop_listening(worker)
        task, worker.task = worker.task, None
        if task is not None and not worker.conn.closed:
            try:  # an answer sent just before death may still be in the pipe
                if worker.conn.poll():
                    settle(task, *self._decode(worker.conn.recv_bytes()))
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
                fail(task, WorkerFailed("the worker died while making the image"))
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
                fail(slot.pending.popleft(), gone)
        for worker in workers:
            if worker.task is not None:
                fail(worker.task, gone)
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
