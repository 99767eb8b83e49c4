"""HTTP range requests (RFC 9110 section 14), for any handler that serves bytes.

`parse` turns a `Range` header into what to send: the whole body (absent,
malformed, another unit, too many ranges), a list of satisfiable ranges, or
`UNSATISFIABLE` (416 with `Content-Range: bytes */total`). `if_range_allows`
decides `If-Range`; `Multipart` lays out a `multipart/byteranges` body.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final

# More ranges than this in one request are ignored (RFC 9110 14.2 allows it):
# a few thousand tiny ranges would turn a small request into a flood of parts.
MAX_RANGES = 64
_SPEC = re.compile(r"(\d*)-(\d*)")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end}/{total}"


class _Unsatisfiable:
    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = _Unsatisfiable()


def parse(header: str | None, total: int) -> list[ByteRange] | _Unsatisfiable | None:
    """The ranges of `header` over a body of `total` bytes; None means the whole body."""
    if header is None:
        return None
    unit, equals, specs = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    parts = [part.strip() for part in specs.split(",")]
    if not parts or len(parts) > MAX_RANGES:
        return None
    ranges: list[ByteRange] = []
    for part in parts:
        match = _SPEC.fullmatch(part)
        if match is None or match.group(1) == match.group(2) == "":
            return None  # one malformed spec makes the whole header malformed
        first, last = match.groups()
        if first == "":  # suffix: the last n bytes
            length = int(last)
            if length > 0 and total > 0:
                ranges.append(ByteRange(max(0, total - length), total - 1))
            continue
        start = int(first)
        if last != "" and int(last) < start:
            return None
        if start < total:
            end = total - 1 if last == "" else min(int(last), total - 1)
            ranges.append(ByteRange(start, end))
    return ranges or UNSATISFIABLE


def if_range_allows(header: str | None, etag: str, last_modified: int) -> bool:
    """Whether `If-Range` lets the range through: a strong ETag equal to ours, or our exact date.

    `last_modified` is the Last-Modified sent, in whole seconds since the epoch.
    """
    if header is None:
        return True
    value = header.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches (strong comparison)
    try:
        return int(parsedate_to_datetime(value).timestamp()) == last_modified
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


@dataclass(frozen=True)
class Multipart:
    """The layout of a `multipart/byteranges` body: a head before each part, one tail."""

    ranges: tuple[ByteRange, ...]
    heads: tuple[bytes, ...]
    tail: bytes
    boundary: str

    @classmethod
    def build(cls, ranges: list[ByteRange], content_type: str, total: int) -> Multipart:
        boundary = secrets.token_hex(16)
        heads = tuple(
            (
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Range: {r.content_range(total)}\r\n\r\n"
            ).encode("latin-1")
            for r in ranges
        )
        return cls(tuple(ranges), heads, f"\r\n--{boundary}--\r\n".encode(), boundary)

    @property
    def content_type(self) -> str:
        return f"multipart/byteranges; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return sum(map(len, self.heads)) + sum(r.length for r in self.ranges) + len(self.tail)
