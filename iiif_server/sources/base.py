"""What every source kind gives the rest of the server: a local file and its identity."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class SourceFile:
    """A readable local file holding a source image.

    `identity` changes whenever the file's content may have changed, so that
    caches keyed with it never serve a stale derivative.
    """

    path: Path
    size: int
    mtime_ns: int

    @property
    def identity(self) -> str:
        return f"{self.size}-{self.mtime_ns}"

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    @classmethod
    def from_stat(cls, path: Path, stat: os.stat_result) -> SourceFile:
        return cls(path, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class SourceScope:
    """Which source files a purge reaches: all, some paths, or everything under some folders.

    Caches keyed by a source's path (infos, hot copies, decoded images) test their
    keys with `matches`; it is small and picklable, so it travels to the workers.
    """

    everything: bool = False
    paths: frozenset[str] = frozenset()
    folders: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        return (
            self.everything
            or path in self.paths
            or any(path.startswith(folder + os.sep) for folder in self.folders)
        )


class Source(Protocol):
    """One identifier type's way of turning a name into a local file."""

    async def resolve(self, name: str) -> SourceFile:
        """The file for `name`, or NotFound / BadRequest."""
        ...

    def purge(self, name: str | None, *, files: bool) -> SourceScope:
        """Forget what this source remembers of `name` (None: of every name).

        Returns the scope of the local files `name` may have been served from, for
        the caches keyed by them. With `files`, files this source downloaded go too.
        """
        ...
