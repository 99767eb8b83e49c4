"""ISBN and EAN normalisation: one cache key per book, whatever form the client sent.

ISBN-10s with a valid check digit become their ISBN-13, so `0-415-48063-X`,
`041548063X` and `978-0-415-48063-5` share one key. Anything else that looks
like a product number (digits, an ISBN-10 with a wrong check digit) is kept as
it is, without hyphens. Text that is not a number at all has no key: it is
never sent to a provider.
"""

from __future__ import annotations

import functools
import re

_CLEAN = re.compile(r"[\s-]+")
_NUMBER = re.compile(r"[0-9]{6,12}[0-9X]")
_ISBN10 = re.compile(r"[0-9]{9}[0-9X]")


def _isbn10_valid(digits: str) -> bool:
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(digits))
    return total % 11 == 0


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_check_digit(first9: str) -> str:
    remainder = (11 - sum((10 - i) * int(c) for i, c in enumerate(first9)) % 11) % 11
    return "X" if remainder == 10 else str(remainder)


@functools.lru_cache(maxsize=8192)
def cache_key(identifier: str) -> str | None:
    """The normalised key of `identifier`, or None when it is not a product number."""
    cleaned = _CLEAN.sub("", identifier).upper()
    if not _NUMBER.fullmatch(cleaned):
        return None
    if _ISBN10.fullmatch(cleaned) and _isbn10_valid(cleaned):
        first12 = "978" + cleaned[:9]
        return first12 + isbn13_check_digit(first12)
    return cleaned


def isbn10(key: str) -> str | None:
    """The ISBN-10 of a normalised key: only 978 ISBN-13s have one (979 and EANs do not)."""
    if len(key) == 13 and key.startswith("978") and key.isdigit():
        return key[3:12] + isbn10_check_digit(key[3:12])
    if _ISBN10.fullmatch(key):
        return key
    return None
