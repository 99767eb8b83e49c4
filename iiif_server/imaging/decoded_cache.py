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
    """Least recently used entries go first once `max_bytes` would be exceeded.

    With `max_images`, also once a new image (a page of a file, with all its
    levels) would make more than that many: the seed server's count of images.
    """

    def __init__(self, max_bytes: int, max_images: int | None = None) -> None:
        self.max_bytes = max(0, max_bytes)
        self.max_images = max_images
        self._entries: OrderedDict[DecodedKey, Decoded] = OrderedDict()
        # (path, page) -> entries (levels) of that image held
        self._images: dict[tuple[str, int], int] = {}
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
        self.make_room(size, key)
        self._entries[key] = decoded
        self.bytes += size
        image = (key.path, key.page)
        self._images[image] = self._images.get(image, 0) + 1

    def make_room(self, nbytes: int, key: DecodedKey | None = None) -> None:
        """Evict before a decode of about `nbytes` (of the image of `key`).

        Evicting first keeps memory within the budget, not budget + one image.
        """
        while self._entries and (
            self.bytes + nbytes > self.max_bytes or self._too_many_images(key)
        ):
            self._discard(next(iter(self._entries)))

    def purge(self, matches: Callable[[str], bool]) -> int:
        """Drop the decodes of the paths `matches` accepts; how many."""
        keys = [key for key in self._entries if matches(key.path)]
        for key in keys:
            self._discard(key)
        return len(keys)

    def clear(self) -> None:
        self._entries.clear()
        self._images.clear()
        self.bytes = 0

    def _too_many_images(self, key: DecodedKey | None) -> bool:
        if self.max_images is None or key is None or (key.path, key.page) in self._images:
            return False
        return len(self._images) >= self.max_images

    def _discard(self, key: DecodedKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
            image = (key.path, key.page)
            self._images[image] -= 1
            if not self._images[image]:
                del self._images[image]
