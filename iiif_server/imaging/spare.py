"""Plane buffers made ahead of the next decode, while the worker has nothing to do.

A fresh 24 MP 4:2:0 image needs 36 MB of new memory, and the first touch of
each page is a page fault: about 35 ms here, before the decoder writes a
byte, on the path of a session's first tile. After a decode this worker
keeps one set of buffers of the same sizes ready, made when it is idle
(`refill`); the next image of those sizes (a collection's photos mostly
share one) is decoded straight into them. One set at most: its memory is a
spare image's, outside the decoded-image budget.
"""

from __future__ import annotations

from collections.abc import Sequence

_spare: list[bytearray] | None = None
_wanted: tuple[int, ...] = ()  # byte sizes of the planes of the last decode


def take(lengths: Sequence[int]) -> list[bytearray]:
    """Buffers of these byte lengths: the spare set if it fits, else new ones."""
    global _spare, _wanted
    _wanted = tuple(lengths)
    if _spare is not None and tuple(map(len, _spare)) == _wanted:
        buffers, _spare = _spare, None
        return buffers
    return [bytearray(length) for length in lengths]


def refill() -> None:
    """Make the spare set for the sizes last decoded (call when idle)."""
    global _spare
    if _wanted and (_spare is None or tuple(map(len, _spare)) != _wanted):
        _spare = None  # the old set goes before the new one is made
        _spare = [bytearray(length) for length in _wanted]


def clear() -> None:
    global _spare, _wanted
    _spare, _wanted = None, ()
