"""The purge journal: how a purge reaches every front process that shares a cache folder.

Front processes (`processes: N`) share `cache_path` but nothing else, so a purge
accepted by one of them is appended to `{cache_path}/purge/journal`, one JSON
line per purge, and every front follows the file: it reads what was appended
since it last looked, every `interval` seconds (one fstat when nothing happened),
and applies the purges other processes wrote. Chosen over signals through the
supervisor because it needs no parent (a `warm` command or a restarted front
joins by opening the file), carries the message itself, and the same folder is
what the processes share anyway; a Redis channel between nodes is a second
transport of the same `Purge` lines.

The journal is a series of segments `journal.00000001`, `journal.00000002`, ...:
appends go to the newest; past `MAX_SEGMENT_BYTES` a writer starts the next and
deletes all but the newest `KEEP_SEGMENTS`, so the folder stays bounded. Writers
hold an exclusive `flock` on `journal.lock`. A reader keeps its segment open,
reads it to the end, then moves to the next: it never misses or repeats a line
unless it fell more than `KEEP_SEGMENTS` segments behind (megabytes of purges
within one interval), and then it purges everything it holds, which is always
safe.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ..background import cancel_and_wait
from .fronts import Confirmation, FrontRegistry, Position
from .message import Purge

logger = logging.getLogger(__name__)

MAX_SEGMENT_BYTES = 256 * 2**10
KEEP_SEGMENTS = 4
_PREFIX = "journal."

Apply = Callable[[list[Purge]], Awaitable[object]]


def _number(name: str) -> int | None:
    digits = name.removeprefix(_PREFIX)
    return int(digits) if name.startswith(_PREFIX) and digits.isdigit() else None


class PurgeJournal:
    def __init__(self, folder: Path, *, interval: float = 0.25) -> None:
        self.folder = Path(folder)
        self.interval = interval
        # Tells this process's own lines apart (a pid may repeat on another node).
        self.origin = secrets.token_hex(8)
        self._file: int | None = None
        self._segment = 0
        self._partial = b""
        self._task: asyncio.Task[None] | None = None
        self.fronts = FrontRegistry(self.folder / "fronts", self.origin)

    def segment_path(self, number: int) -> Path:
        return self.folder / f"{_PREFIX}{number:08d}"

    def segments(self) -> list[int]:
        try:
            names = [path.name for path in self.folder.iterdir()]
        except OSError:
            return []
        return sorted(n for n in map(_number, names) if n is not None)

    def publish(self, purges: Sequence[Purge]) -> Position:
        """Append `purges` for the other front processes (this one applied them already).

        Returns the position just after them, for `confirmed`.
        """
        lines = b"".join(
            json.dumps(
                {"origin": self.origin, "time": time.time(), "purge": purge.to_json()},
                separators=(",", ":"),
            ).encode()
            + b"\n"
            for purge in purges
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "journal.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                numbers = self.segments() or [1]
                newest = numbers[-1]
                path = self.segment_path(newest)
                if path.exists() and path.stat().st_size > MAX_SEGMENT_BYTES:
                    newest += 1
                    path = self.segment_path(newest)
                    for old in numbers:
                        if old <= newest - KEEP_SEGMENTS:
                            self.segment_path(old).unlink(missing_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, lines)
                    return newest, os.lseek(fd, 0, os.SEEK_CUR)
                finally:
                    os.close(fd)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def confirmed(self, position: Position, timeout: float) -> Confirmation:
        """Wait (at most `timeout`) until the other fronts have applied up to `position`."""
        return await self.fronts.wait(position, timeout)

    @property
    def position(self) -> Position:
        """How far this reader has read (a torn last line not included)."""
        assert self._file is not None
        return self._segment, os.lseek(self._file, 0, os.SEEK_CUR) - len(self._partial)

    def start(self, apply: Apply) -> None:
        """Follow the journal from its current end; purges of others go to `apply`."""
        self.open_at_end()
        self.fronts.report(self.position)  # known to the publishers from now on
        self._task = asyncio.ensure_future(self._follow(apply))

    def open_at_end(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._segment = (self.segments() or [1])[-1]
        self._file = os.open(self.segment_path(self._segment), os.O_RDONLY | os.O_CREAT, 0o644)
        os.lseek(self._file, 0, os.SEEK_END)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
            self.fronts.remove()
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def read(self) -> list[Purge]:
        """The purges other processes appended since the last read."""
        if self._file is None:
            return []
        data = self._partial + self._read_rest()
        fell_behind = False
        # Writers move on only from a segment past the limit: below it, nothing to look for.
        while os.fstat(self._file).st_size > MAX_SEGMENT_BYTES:
            try:
                following = os.open(self.segment_path(self._segment + 1), os.O_RDONLY)
            except FileNotFoundError:
                newer = [n for n in self.segments() if n > self._segment + 1]
                if not newer:
                    break
                fell_behind = True  # the next segment is gone already
                following = os.open(self.segment_path(newer[0]), os.O_RDONLY)
                self._segment = newer[0] - 1
            data += self._read_rest()  # appended before the writer moved on
            os.close(self._file)
            self._file, self._segment = following, self._segment + 1
            # A line never spans segments: a torn end of the old one is dropped.
            complete, _, _torn = data.rpartition(b"\n")
            data = (complete + b"\n" if complete else b"") + self._read_rest()
        complete, _, self._partial = data.rpartition(b"\n")
        purges: list[Purge] = []
        if fell_behind:
            logger.warning("purge journal: fell behind; purging everything to be safe")
            purges.append(Purge())
        for line in complete.splitlines():
            try:
                record = json.loads(line)
                if record.get("origin") != self.origin:
                    purges.append(Purge.from_json(record["purge"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                logger.warning("purge journal: skipped an unreadable line")
        return purges

    async def _follow(self, apply: Apply) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                purges = self.read()
                if purges:
                    await apply(purges)
                self.fronts.report(self.position)
            except Exception:
                # The next purge must still arrive: log, and keep following.
                logger.exception("purge journal: applying purges failed")

    def _read_rest(self) -> bytes:
        assert self._file is not None
        chunks = []  # bounded: a segment is not much larger than MAX_SEGMENT_BYTES
        while chunk := os.read(self._file, 2**16):
            chunks.append(chunk)
        return b"".join(chunks)
