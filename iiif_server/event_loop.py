"""The event loop a server process runs on (`event_loop`): uvloop by default, or asyncio's.

uvloop's loop and transports are written in C over libuv: the fronts' and the
supervisor's share of a cold zoom session's CPU, which is mostly event-loop and
socket work, shrinks with it. Everything here is plain asyncio otherwise; the
one place that needed care is the pipes to the workers (`worker_lifecycle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T], kind: str) -> T:
    """`asyncio.run(coroutine)` on a loop of `kind` (`uvloop` or `asyncio`)."""
    if kind == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    return asyncio.run(coroutine)


def running_kind() -> str:
    """`uvloop` or `asyncio`: what this process runs on (for /health)."""
    return (
        "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
    )
