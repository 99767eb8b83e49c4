"""A per-process LRU of decoded sources, bounded in bytes.

A deep-zoom session asks for dozens of tiles of one image; with requests for
an identifier routed to one worker, the source is decoded once and every
tile is cut from memory (about 1 ms instead of 25-130 ms a tile).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from iiif_server.imaging.decode import Decoded


class DecodedKey(NamedTuple):
    path: str
    identity: str  # changes with the file (size, mtime): an edited file misses
    page: int
    scale: int


class DecodedCache:
    """Least recently used entries go first once `max_bytes` would be exceeded."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[DecodedKey, Decoded] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: DecodedKey) -> Decoded | None:
        decoded = self._entries.get(key)
        if decoded is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return decoded

    def peek(self, key: DecodedKey) -> Decoded | None:
        """The entry if present, without counting a miss or refreshing its position."""
        return self._entries.get(key)

    def put(self, key: DecodedKey, decoded: Decoded) -> None:
        """Keep `decoded` unless it alone exceeds the budget.

        Decodes of an older version of the same file can never be asked for
        again, so they go at once.
        """
        stale = [k for k in self._entries if k.path == key.path and k.identity != key.identity]
        for old_key in [*stale, key]:
            self._discard(old_key)
        size = decoded.nbytes
        if size > self.max_bytes:
            return
        while self.bytes + size > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self.bytes -= oldest.nbytes
        self._entries[key] = decoded
        self.bytes += size

    def make_room(self, nbytes: int) -> None:
        """Evict before a decode of about `nbytes`: memory holds the budget, not budget + 1."""
        while self._entries and self.bytes + nbytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self.bytes -= oldest.nbytes

    def purge(self, matches: Callable[[str], bool]) -> int:
        """Drop the decodes of the paths `matches` accepts; how many."""
        keys = [key for key in self._entries if matches(key.path)]
        for key in keys:
            self._discard(key)
        return len(keys)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _discard(self, key: DecodedKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
