"""One purge as it travels between front processes (and, later, between nodes).

A message names what to forget, never how: each process turns it into its own
caches' terms (`local.LocalPurger`). It is small JSON so that any transport can
carry it: today the shared journal (`journal.py`), later a Redis channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..cache_layout import Selection
from ..sources.base import SourceScope

# An identifier longer than this is no identifier: it also keeps a journal line small.
MAX_NAME_LENGTH = 1024


@dataclass(frozen=True)
class Purge:
    """`type` and `name`: one identifier; `type` alone: a whole type; neither: everything."""

    type: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None and self.type is None:
            raise ValueError("a purged name needs its type")
        if self.name is not None and len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(f"an identifier is at most {MAX_NAME_LENGTH} characters")

    @property
    def scope(self) -> str:
        if self.type is None:
            return "all"
        return "type" if self.name is None else "identifier"

    def __str__(self) -> str:
        if self.type is None:
            return "everything"
        return f"type {self.type}" if self.name is None else f"{self.type}:{self.name}"

    def to_json(self) -> dict[str, str]:
        return {
            key: value
            for key, value in (("type", self.type), ("name", self.name))
            if value is not None
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Purge:
        """ValueError for anything but `{}`, `{"type": t}` or `{"type": t, "name": n}`."""
        if not isinstance(raw, Mapping) or set(raw) - {"type", "name"}:
            raise ValueError(f"not a purge message: {raw!r}")
        type_name, name = raw.get("type"), raw.get("name")
        if not all(value is None or isinstance(value, str) for value in (type_name, name)):
            raise ValueError(f"not a purge message: {raw!r}")
        return cls(type_name, name)

    def selection(self, scope: SourceScope) -> Selection:
        """The derivatives to purge, given the source files the identifier may mean."""
        if self.type is None:
            return Selection.of(everything=True)
        if self.name is None:
            return Selection.of(types=[self.type])
        return Selection.of(sources=scope.paths)
