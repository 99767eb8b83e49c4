"""Which front processes have applied the journal how far: so a purge can wait for all.

Every front that follows the journal keeps a small file `fronts/{pid}-{origin}`
holding the journal position (segment, offset) it has applied up to, written
atomically after each read that moved it, and removed when it stops. The front
that received a purge publishes it, then waits until every other front's file
shows that position or later; a file whose process is gone (a crash) is removed
instead of waited for. So when the admin API answers, the other fronts have
applied the purge (or the answer says how many have not, after `timeout`).
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

Position = tuple[int, int]  # (journal segment, byte offset in it)
_POLL = 0.02


@dataclass(frozen=True)
class Confirmation:
    confirmed: int  # other fronts that applied the purge
    unconfirmed: int  # other fronts still busy with it after the timeout


class FrontRegistry:
    def __init__(self, folder: Path, origin: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / f"{os.getpid()}-{origin}"
        self._reported: Position | None = None

    def report(self, position: Position) -> None:
        """Record that this front applied the journal up to `position`."""
        if position == self._reported:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.tmp")
        temp.write_text(f"{position[0]} {position[1]}", encoding="ascii")
        temp.replace(self.path)
        self._reported = position

    def remove(self) -> None:
        with suppress(OSError):
            self.path.unlink(missing_ok=True)

    async def wait(self, position: Position, timeout: float) -> Confirmation:
        """Wait until every other live front has applied the journal up to `position`."""
        deadline = time.monotonic() + timeout
        while True:
            behind, ahead = self._others(position)
            if not behind or time.monotonic() >= deadline:
                return Confirmation(ahead, behind)
            await asyncio.sleep(_POLL)

    def _others(self, position: Position) -> tuple[int, int]:
        """(fronts behind `position`, fronts at or past it), besides this one."""
        behind = ahead = 0
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return 0, 0
        for entry in entries:
            if entry == self.path or entry.name.startswith("."):
                continue
            pid_text = entry.name.partition("-")[0]
            if not pid_text.isdigit() or not _alive(int(pid_text)):
                with suppress(OSError):
                    entry.unlink()  # its process is gone: nothing to wait for
                continue
            try:
                segment, offset = (int(n) for n in entry.read_text(encoding="ascii").split())
            except (OSError, ValueError):
                behind += 1  # being replaced right now: read again
                continue
            if (segment, offset) >= position:
                ahead += 1
            else:
                behind += 1
        return behind, ahead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid: not ours, but do not guess
    return True
