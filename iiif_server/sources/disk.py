"""The `disk` source: `{source_path}/{type}/{name}`, never anything outside that folder."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from cachetools import LRUCache

from ..errors import BadRequest, NotFound
from .base import SourceFile, SourceScope

# How long a resolved name is reused before it is looked up again (files renamed or
# linked differently are seen after this).
_REMEMBER_SECONDS = 2.0
# Tried in this order when a name has no file of its own.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".jp2", ".webp", ".gif", ".pdf")


class DiskSource:
    def __init__(self, root: Path) -> None:
        # Resolved once: every candidate must lie inside the real root.
        self._root = Path(os.path.realpath(root))
        # name -> (real path inside the root, until when): a tile burst resolves a name
        # dozens of times a second. Safe to reuse: what is read is the real path, which
        # was inside the root; a stat() still checks that it is there and what it is now.
        self._recent: LRUCache[str, tuple[Path, float]] = LRUCache(maxsize=4096)

    @property
    def root(self) -> Path:
        return self._root

    async def resolve(self, name: str) -> SourceFile:
        return self.find(name)

    def find(self, name: str) -> SourceFile:
        known = self._recent.get(name)
        if known is not None and time.monotonic() < known[1]:
            found = self._stat(known[0])
            if found is not None:
                return found
        found = self._search(name)
        self._recent[name] = (found.path, time.monotonic() + _REMEMBER_SECONDS)
        return found

    def purge(self, name: str | None, *, files: bool) -> SourceScope:
        """Forget the remembered resolution of `name` (None: of all); the files it may name.

        Files on disk are the user's: `files` changes nothing here.
        """
        if name is None:
            self._recent.clear()
            return SourceScope(folders=(str(self._root),))
        self._recent.pop(name, None)
        # Every file the name may have meant, existing or not (its derivatives may outlive it).
        paths = {os.path.realpath(candidate) for candidate in self._candidates(name)}
        return SourceScope(paths=frozenset(paths))

    def _candidates(self, name: str) -> list[Path]:
        """The paths `name` may mean, in the order they are tried; NotFound for bad names."""
        if "\x00" in name:
            raise BadRequest("identifier contains a NUL byte")
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise NotFound(f"no image {name!r}")
        candidate = self._root.joinpath(*parts)
        if Path(name).suffix:
            return [candidate]
        return [candidate] + [candidate.with_name(candidate.name + e) for e in EXTENSIONS]

    def _search(self, name: str) -> SourceFile:
        for candidate in self._candidates(name):
            found = self._regular_file(candidate)
            if found is not None:
                return found
        raise NotFound(f"no image {name!r}")

    def _regular_file(self, candidate: Path) -> SourceFile | None:
        # realpath follows symlinks, so a link pointing out of the root is caught here.
        real = Path(os.path.realpath(candidate))
        if real != self._root and self._root not in real.parents:
            return None
        return self._stat(real)

    @staticmethod
    def _stat(real: Path) -> SourceFile | None:
        try:
            info = real.stat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return SourceFile.from_stat(real, info)
