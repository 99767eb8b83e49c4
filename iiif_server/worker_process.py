"""What runs inside a pool's worker process: take a pickled task, answer it, repeat.

The front (`workers.WorkerPool`) sends `(fn, args)` pickled; the worker answers
`(kind, value)` pickled, where kind is READY (once, after the initializer),
RESULT or ERROR. A failure to pickle an answer is itself an answer, so the
front never waits for a reply that cannot come.
"""

from __future__ import annotations

import logging
import pickle
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from iiif_server.errors import ServerError

logger = logging.getLogger(__name__)

READY = "ready"
RESULT = "result"
ERROR = "error"

# Work a worker does between tasks when none is waiting (see `when_idle`).
_idle_work: list[Callable[[], None]] = []
# Seconds without a task before that: within a zoom session the next tile comes
# sooner, and must not wait for the preparation of an image yet to come.
_IDLE_AFTER = 0.05


def when_idle(work: Callable[[], None]) -> None:
    """Have this worker run `work` after a task once no other task came for a moment.

    For preparation that would otherwise sit on the next task's path (an
    initializer registers it). A task that arrives meanwhile waits for it.
    """
    if work not in _idle_work:  # an initializer run twice registers once
        _idle_work.append(work)


def worker_main(
    conn: Connection, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """Run tasks from ``conn`` one at a time until the front closes its end."""
    # Ctrl-C reaches the whole process group; the front decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
    try:
        conn.send((READY, None))
        while True:
            try:
                data = conn.recv_bytes()
            except EOFError:
                return
            conn.send_bytes(_run(data))
            if _idle_work and not conn.poll(_IDLE_AFTER):
                _run_idle_work()
    except OSError:
        return  # the front went away


def _run_idle_work() -> None:
    for work in _idle_work:
        try:
            work()
        except Exception:
            logger.exception("worker: idle work failed")


def _run(data: bytes) -> bytes | memoryview:
    """Run one pickled task; return its answer pickled (a failure to pickle is an answer)."""
    label = "task"
    answer: tuple[str, Any]
    try:
        fn, args = pickle.loads(data)
        label = getattr(fn, "__qualname__", label)
        answer = (RESULT, fn(*args))
    except ServerError as exc:
        answer = (ERROR, exc)
    except Exception as exc:
        logger.exception("worker: %s failed", label)
        answer = (ERROR, ServerError(f"internal error in worker ({type(exc).__name__})"))
    try:
        return ForkingPickler.dumps(answer)
    except Exception:
        logger.exception("worker: the answer of %s cannot be pickled", label)
        return ForkingPickler.dumps((ERROR, ServerError("internal error: unsendable answer")))
