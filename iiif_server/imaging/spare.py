"""Plane buffers made ahead of the next decodes, while the worker has nothing to do.

A fresh 24 MP 4:2:0 image needs 36 MB of new memory, and the first touch of
each page is a page fault: about 25-35 ms here, before the decoder writes a
byte, on the path of a session's first tile. After a decode this worker
keeps sets of buffers of the same sizes ready, made when it is idle
(`refill`); the next images of those sizes (a collection's photos mostly
share one) are decoded straight into them. Two sets at most, for a worker's
share of sessions that start together (four viewers on two workers); their
memory is two spare images', outside the decoded-image budget.
"""

from __future__ import annotations

from collections.abc import Sequence

SETS = 2
_spare: list[list[bytearray]] = []  # sets of buffers of the sizes `_wanted`
_wanted: tuple[int, ...] = ()  # byte sizes of the planes of the last decode


def take(lengths: Sequence[int]) -> list[bytearray]:
    """Buffers of these byte lengths: a spare set if one fits, else new ones."""
    global _wanted
    _wanted = tuple(lengths)
    if _spare and tuple(map(len, _spare[-1])) == _wanted:
        return _spare.pop()
    return [bytearray(length) for length in lengths]


def refill() -> None:
    """Make the spare sets for the sizes last decoded (call when idle)."""
    if not _wanted:
        return
    if any(tuple(map(len, buffers)) != _wanted for buffers in _spare):
        _spare.clear()  # the old sets go before new ones are made
    while len(_spare) < SETS:
        _spare.append([bytearray(length) for length in _wanted])


def clear() -> None:
    global _wanted
    _spare.clear()
    _wanted = ()
