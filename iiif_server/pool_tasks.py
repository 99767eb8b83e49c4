"""What a worker pool queues and reports: tasks, how they are placed, optional jobs, status.

Shared by the pool (`workers`), the processes behind it (`worker_lifecycle`)
and the fronts that use a pool in another process (`pool_client`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.reduction import ForkingPickler
from typing import Any

from iiif_server.errors import ServerError
from iiif_server.worker_process import RESULT

logger = logging.getLogger("iiif_server.workers")


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
class Task:
    """A call queued for a worker, and the future its answer settles."""

    payload: bytes | memoryview  # (fn, args), pickled at submit so bad arguments fail there
    label: str
    future: asyncio.Future[Any]


@dataclass(frozen=True)
class Route:
    """How a task is placed: see `WorkerPool.submit`."""

    affinity: str | None
    light: bool
    prefer: str | None


@dataclass(eq=False)
class Held:
    """An optional job of `submit_if_idle` waiting out its hold, and the tasks waiting for it."""

    payload: bytes | memoryview
    label: str
    light: bool
    timer: asyncio.TimerHandle | None = None
    waiting: list[tuple[Task, Route]] = field(default_factory=list)


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


def drop_outcome(future: asyncio.Future[Any]) -> None:
    """Optional work: its result or error is not wanted (retrieved, so never logged)."""
    if not future.cancelled():
        future.exception()


def settle(task: Task, kind: str, value: Any) -> None:
    if task.future.done():  # the caller was cancelled: the answer is dropped
        return
    if kind == RESULT:
        task.future.set_result(value)
    else:
        task.future.set_exception(value)


def fail(task: Task, error: ServerError) -> None:
    if not task.future.done():
        task.future.set_exception(error)
