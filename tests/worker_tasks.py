"""Task functions for tests/test_workers.py.

Spawned workers import these by their module path (``tests.worker_tasks``), so
they must live in an importable module, not in the test file.
"""

from __future__ import annotations

import ctypes
import os
import resource
import threading
import time
from pathlib import Path

from iiif_server.errors import NotFound, ServerError

_configured: str | None = None


def configure(value: str) -> None:
    """Initializer: leaves a mark that later tasks in the same worker can read."""
    global _configured
    _configured = value


def configured() -> str | None:
    return _configured


def fail_to_start() -> None:
    raise RuntimeError("this initializer fails on purpose")


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def touch(path: str) -> None:
    Path(path).touch()


def write_pid(path: str) -> None:
    """Leave this worker's pid in `path`: which worker ran a task whose result is dropped."""
    Path(path).write_text(str(os.getpid()))


def raise_not_found(message: str) -> None:
    raise NotFound(message)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def exit_abruptly() -> None:
    os._exit(3)


def die_in(victim: int) -> int:
    """Exit if this worker is `victim`, else answer its pid."""
    if os.getpid() == victim:
        os._exit(3)
    return os.getpid()


def segfault() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file left behind
    ctypes.string_at(0)


def unpicklable_result() -> object:
    return threading.Lock()


class TwoArgumentError(ServerError):
    """Pickles fine in the worker but cannot be rebuilt from its args in the front."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def raise_unrebuildable_error() -> None:
    raise TwoArgumentError("cannot come back", 7)


_idle_runs = 0


def _count_idle_run() -> None:
    global _idle_runs
    _idle_runs += 1


def register_idle_work() -> None:
    """Initializer: count the runs of this worker's idle work."""
    from iiif_server.worker_process import when_idle

    when_idle(_count_idle_run)
    when_idle(_count_idle_run)  # registered once


def idle_runs() -> int:
    return _idle_runs


def echo(data: bytes) -> bytes:
    return data
