"""The `disk` source: `{source_path}/{type}/{name}`, never anything outside that folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import BadRequest, NotFound
from .base import SourceFile

# Tried in this order when a name has no file of its own.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".jp2", ".webp", ".gif")


class DiskSource:
    def __init__(self, root: Path) -> None:
        # Resolved once: every candidate must lie inside the real root.
        self._root = Path(os.path.realpath(root))

    @property
    def root(self) -> Path:
        return self._root

    async def resolve(self, name: str) -> SourceFile:
        return self.find(name)

    def find(self, name: str) -> SourceFile:
        if "\x00" in name:
            raise BadRequest("identifier contains a NUL byte")
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise NotFound(f"no image {name!r}")
        candidate = self._root.joinpath(*parts)
        found = self._regular_file(candidate)
        if found is None and not Path(name).suffix:
            for extension in EXTENSIONS:
                found = self._regular_file(candidate.with_name(candidate.name + extension))
                if found is not None:
                    break
        if found is None:
            raise NotFound(f"no image {name!r}")
        return found

    def _regular_file(self, candidate: Path) -> SourceFile | None:
        # realpath follows symlinks, so a link pointing out of the root is caught here.
        real = Path(os.path.realpath(candidate))
        if real != self._root and self._root not in real.parents:
            return None
        try:
            info = real.stat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return SourceFile.from_stat(real, info)
