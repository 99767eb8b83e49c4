"""Names of shared entries that mean the same on every node.

A source's local path is node-independent for images on a shared mount, but a
download sits under each node's own `cache_path`: inside it, the path is taken
relative to it, so nodes with the same configuration name the same source alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..cache_layout import sha256_hex, source_tag, type_tag


class SharedNames:
    def __init__(self, cache_path: Path) -> None:
        self._cache_prefix = str(Path(cache_path).absolute()) + os.sep

    def source(self, path: str) -> str:
        """`path`, or `cache:` and its place under cache_path."""
        absolute = str(Path(path).absolute())
        if absolute.startswith(self._cache_prefix):
            return "cache:" + absolute[len(self._cache_prefix) :]
        return absolute

    def derivative(self, type_name: str, source_path: str, key: str) -> str:
        """`{type}/{source}/{key}` tags: a purge lists one source's or one type's prefix.

        The derivative's key holds the source's local path: it is swapped for its
        shared name before hashing.
        """
        shared = self.source(source_path)
        return "/".join(
            (
                type_tag(type_name),
                source_tag(shared),
                sha256_hex(key.replace(source_path, shared, 1)),
            )
        )

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
