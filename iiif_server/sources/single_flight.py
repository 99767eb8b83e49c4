"""One running task per key, shared by every caller that asks for that key meanwhile."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Only tasks running now are held: the table is bounded by the requests in flight."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the task for `key`, started with `start()` if none is running."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(start())
            self._running[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        # Shielded: a client going away does not cancel the work for the others.
        return await asyncio.shield(task)

    def _done(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        # Retrieved, so asyncio does not log a failure that every caller abandoned.
        if not task.cancelled():
            task.exception()
