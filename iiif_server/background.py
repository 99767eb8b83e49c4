"""Stopping a background task of a front process (followers, refreshers, schedulers)."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` (None: nothing) and wait until it has stopped, its cancellation swallowed."""
    if task is None:
        return
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
