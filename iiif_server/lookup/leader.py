"""Who syncs: one process per machine, chosen by an flock, on a jittered schedule.

Every front process runs a `Leader`; the one that holds `leader.lock` syncs
each scheme every `interval` seconds (times 0.9 to 1.1, so machines that
share an editor do not ask it in step), the others retry the lock each
second and take over when its holder dies (the kernel frees the lock).
The schedule follows `last_attempt` in the shared status, so a restart or a
takeover does not ask the editor again before the interval is over.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from .config import LookupSettings
from .state import LEADER_LOCK, SYNC_LOCK, SchemeStatus, read_status, write_status
from .syncer import sync_scheme

logger = logging.getLogger(__name__)
TICK = 1.0  # seconds between two looks at the lock and the schedule
JITTER = 0.1


def try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None when another holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


async def sync_locked(
    settings: LookupSettings, folder: Path, schemes: list[str]
) -> dict[str, tuple[str, SchemeStatus]]:
    """Sync `schemes` one after the other under the machine's sync lock; outcome and status each."""
    lock = try_lock(folder / SYNC_LOCK)
    while lock is None:  # polled rather than blocking a thread: a stop can cancel the wait
        await asyncio.sleep(0.2)
        lock = try_lock(folder / SYNC_LOCK)
    try:
        # No sync runs on this machine but ours: a temporary file is a crashed one's.
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        results = {}
        for scheme in schemes:
            statuses = read_status(folder)  # `lookup sync` may have written it meanwhile
            status = statuses.setdefault(scheme, SchemeStatus())
            outcome = await sync_scheme(settings, folder, scheme, status)
            write_status(folder, statuses)
            results[scheme] = (outcome, status)
        return results
    finally:
        os.close(lock)


def _jitter() -> float:
    return random.uniform(1 - JITTER, 1 + JITTER)


class Leader:
    def __init__(self, settings: LookupSettings, folder: Path, on_sync: Callable[[], None]) -> None:
        self.settings = settings
        self.folder = folder
        self.on_sync = on_sync  # called after each sync, to map a new index at once
        self._lock: int | None = None
        self._due: dict[str, float] = {}

    @property
    def leading(self) -> bool:
        return self._lock is not None

    async def run(self) -> None:
        try:
            while True:
                if self._lock is None:
                    self._lock = try_lock(self.folder / LEADER_LOCK)
                    if self._lock is not None:
                        logger.info("lookup: process %d syncs the listings", os.getpid())
                        self._schedule_from_status()
                if self._lock is not None:
                    due = [s for s in self.settings.schemes if self._due[s] <= time.time()]
                    if due:
                        started = time.time()
                        try:
                            await sync_locked(self.settings, self.folder, due)
                        except OSError as error:  # the status could not be written
                            logger.error("lookup: sync failed: %s", error)
                        for scheme in due:
                            self._due[scheme] = started + self.settings.interval * _jitter()
                        self.on_sync()
                await asyncio.sleep(TICK)
        finally:
            self.release()

    def _schedule_from_status(self) -> None:
        statuses = read_status(self.folder)
        for scheme in self.settings.schemes:
            last = statuses.get(scheme, SchemeStatus()).last_attempt
            if last is None:
                self._due[scheme] = 0.0
            else:
                self._due[scheme] = last + self.settings.interval * _jitter()

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
