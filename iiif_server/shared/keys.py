"""Names of shared entries that mean the same on every node.

A source's local path depends on where the node keeps its files: inside
`source_path` (images on disk, downloads) or `cache_path`, a path is named
relative to that folder, so nodes that mount the same images elsewhere still
name them alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..cache_layout import sha256_hex, source_tag, type_tag


class SharedNames:
    def __init__(self, source_path: Path, cache_path: Path) -> None:
        self._roots = [
            (label, str(Path(root).absolute()) + os.sep)
            for label, root in (("cache", cache_path), ("source", source_path))
        ]

    def source(self, path: str) -> str:
        """`path`, or `source:`/`cache:` and its place in that folder."""
        absolute = str(Path(path).absolute())
        for label, root in self._roots:
            if absolute.startswith(root):
                return f"{label}:{absolute[len(root) :]}"
        return absolute

    def derivative(
        self, type_name: str, source_path: str, key: str, identity: tuple[str, str] | None = None
    ) -> str:
        """`{type}/{source}/{key}` tags: a purge lists one source's or one type's prefix.

        The derivative's key holds the source's local path: it is swapped for its
        shared name before hashing. `identity`, (local, shared): the same for the
        source's identity (a download's mtime is this node's; its ETag is everyone's).
        """
        shared = self.source(source_path)
        key = key.replace(source_path, shared, 1)
        if identity is not None:
            key = key.replace(f"|{identity[0]}|", f"|{identity[1]}|", 1)
        return "/".join((type_tag(type_name), source_tag(shared), sha256_hex(key)))

    def source_prefix(self, type_name: str, source_path: str) -> str:
        return f"{type_tag(type_name)}/{source_tag(self.source(source_path))}/"

    @staticmethod
    def type_prefix(type_name: str) -> str:
        return f"{type_tag(type_name)}/"

    def info(self, source_path: str, page: int | None, identity: str) -> str:
        """`{source}:{page|identity}` tags: a purge scans one source's infos."""
        tag = source_tag(self.source(source_path))
        return f"{tag}:{sha256_hex(f'{page}|{identity}')[:32]}"

    def info_prefix(self, source_path: str) -> str:
        return source_tag(self.source(source_path)) + ":"
