"""File names and folders of the derivative cache, and the scans that read or purge them.

An entry's name is the sha256 of its key (64 hex digits) or, for a key with a
`Group`, `{source:16}-{type:8}-{key:64}`: the first 16 hex digits of the sha256
of the source's path, 8 of its type's name, then the key's. Every name lives in
`root/{name[:2]}/`, so all derivatives of one source share one of the 256
fan-out folders, and purging a source reads that folder only (about 1/256 of
the cache), never the whole tree. Plain 64-digit names (written before groups
existed, or without one) are still loaded, counted and evicted.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

TEMP_PREFIX = ".tmp-"
_HEX_DIGITS = frozenset("0123456789abcdef")
_DIGEST_LENGTH = 64
_SOURCE_DIGITS, _TYPE_DIGITS = 16, 8
_GROUPED_LENGTH = _SOURCE_DIGITS + 1 + _TYPE_DIGITS + 1 + _DIGEST_LENGTH
# Temp files older than this at start-up are leftovers of a dead writer.
STALE_TEMP_SECONDS = 600.0


def sha256_hex(text: str) -> str:
    # surrogatepass: a key built from a strange URL must never make a lookup raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def source_tag(source: str) -> str:
    return sha256_hex(source)[:_SOURCE_DIGITS]


def type_tag(type_name: str) -> str:
    return sha256_hex(type_name)[:_TYPE_DIGITS]


@dataclass(frozen=True)
class Group:
    """What a derivative was made from, so that a purge can find it: its type and source."""

    type: str
    source: str  # the source file's path

    @cached_property
    def prefix(self) -> str:
        return f"{source_tag(self.source)}-{type_tag(self.type)}-"


@dataclass(frozen=True)
class Selection:
    """Which entries a purge removes: everything, or those of some sources or types."""

    everything: bool = False
    sources: frozenset[str] = frozenset()  # source tags
    types: frozenset[str] = frozenset()  # type tags

    @classmethod
    def of(
        cls, *, everything: bool = False, sources: Collection[str] = (), types: Collection[str] = ()
    ) -> Selection:
        return cls(
            everything,
            frozenset(source_tag(s) for s in sources),
            frozenset(type_tag(t) for t in types),
        )

    def matches(self, name: str) -> bool:
        if self.everything:
            return True
        if len(name) != _GROUPED_LENGTH:
            return False  # ungrouped: only "everything" reaches it
        return (
            name[:_SOURCE_DIGITS] in self.sources
            or name[_SOURCE_DIGITS + 1 : _SOURCE_DIGITS + 1 + _TYPE_DIGITS] in self.types
        )

    def folders(self) -> list[str] | None:
        """The fan-out folders that can hold a match; None: any of them."""
        if self.everything or self.types:
            return None
        return sorted({tag[:2] for tag in self.sources})


def entry_name(key: str, group: Group | None) -> str:
    digest = sha256_hex(key)
    return digest if group is None else group.prefix + digest


def is_entry_name(name: str) -> bool:
    if len(name) == _DIGEST_LENGTH:
        return _HEX_DIGITS.issuperset(name)
    if len(name) != _GROUPED_LENGTH:
        return False
    source, kind, digest = name.split("-") if name.count("-") == 2 else ("", "", "")
    return (
        len(source) == _SOURCE_DIGITS
        and len(kind) == _TYPE_DIGITS
        and _HEX_DIGITS.issuperset(source + kind + digest)
    )


def subdirectories(root: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(root) as entries:
            return [
                e
                for e in entries
                if len(e.name) == 2 and _HEX_DIGITS.issuperset(e.name) and e.is_dir()
            ]
    except OSError:
        return []


def scan_leaf(directory: Path, prefix: str) -> list[tuple[float, str, int]]:
    """(mtime, name, size) of the entries in one fan-out folder; removes dead temp files."""
    found: list[tuple[float, str, int]] = []
    try:
        with os.scandir(directory) as entries:
            for e in entries:
                try:
                    if e.name.startswith(TEMP_PREFIX):
                        # Left by a process that died mid-write: never complete. A
                        # recent one may be a sibling front process's write in progress.
                        if time.time() - e.stat().st_mtime > STALE_TEMP_SECONDS:
                            Path(e.path).unlink(missing_ok=True)
                    elif (
                        is_entry_name(e.name)
                        and e.name.startswith(prefix)
                        and e.is_file(follow_symlinks=False)
                    ):
                        st = e.stat(follow_symlinks=False)
                        if st.st_size == 0:
                            Path(e.path).unlink(missing_ok=True)
                        else:
                            found.append((st.st_mtime, e.name, st.st_size))
                except OSError:
                    continue
    except OSError:
        pass
    return found


def remove_matching(root: Path, selection: Selection) -> int:
    """Delete the entry files `selection` matches; how many. Runs in a thread: it may be long."""
    folders = selection.folders()
    directories = (
        [Path(d.path) for d in subdirectories(root)]
        if folders is None
        else [root / folder for folder in folders]
    )
    removed = 0
    for directory in directories:
        for _mtime, name, _size in scan_leaf(directory, directory.name):
            if selection.matches(name):
                try:
                    (directory / name).unlink()
                except OSError:
                    continue
                removed += 1
    return removed
