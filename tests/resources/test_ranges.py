"""Range and If-Range as RFC 9110 section 14 has them."""

from __future__ import annotations

from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from iiif_server.resources.ranges import UNSATISFIABLE, ByteRange, Multipart, if_range_allows, parse


def test_single_open_and_suffix_ranges() -> None:
    assert parse("bytes=0-9", 100) == [ByteRange(0, 9)]
    assert parse("bytes=90-", 100) == [ByteRange(90, 99)]
    assert parse("bytes=-5", 100) == [ByteRange(95, 99)]
    assert parse("bytes=95-200", 100) == [ByteRange(95, 99)]  # the end is clipped
    assert parse("bytes=-500", 100) == [ByteRange(0, 99)]  # a suffix longer than the body
    assert parse(" Bytes = 1-2 , 4-5 ", 100) == [ByteRange(1, 2), ByteRange(4, 5)]


def test_unsatisfiable_ranges() -> None:
    assert parse("bytes=100-", 100) is UNSATISFIABLE
    assert parse("bytes=100-200,300-", 100) is UNSATISFIABLE
    assert parse("bytes=-0", 100) is UNSATISFIABLE
    assert parse("bytes=0-0", 0) is UNSATISFIABLE
    # One satisfiable range among unsatisfiable ones is served.
    assert parse("bytes=200-300,0-0", 100) == [ByteRange(0, 0)]


def test_malformed_or_foreign_ranges_are_ignored() -> None:
    for header in ("bytes=5-2", "bytes=abc", "bytes=", "bytes=-", "items=0-5", "0-5",
                   "bytes=1-2,x", "bytes=--1", "bytes=1.5-2"):  # fmt: skip
        assert parse(header, 100) is None, header
    assert parse(None, 100) is None
    assert parse("bytes=" + ",".join(["0-0"] * 65), 100) is None  # too many ranges


def test_if_range_needs_an_exact_strong_etag_or_date() -> None:
    modified = 1_700_000_000
    assert if_range_allows(None, '"a"', modified)
    assert if_range_allows('"a"', '"a"', modified)
    assert not if_range_allows('"b"', '"a"', modified)
    assert not if_range_allows('W/"a"', '"a"', modified)
    assert if_range_allows(formatdate(modified, usegmt=True), '"a"', modified)
    assert not if_range_allows(formatdate(modified + 1, usegmt=True), '"a"', modified)
    assert not if_range_allows("not a date", '"a"', modified)


def test_multipart_length_counts_every_byte() -> None:
    parts = Multipart.build([ByteRange(0, 1), ByteRange(5, 9)], "text/plain", 10)
    body = b"0123456789"
    written = b"".join(
        head + body[r.start : r.end + 1] for head, r in zip(parts.heads, parts.ranges, strict=True)
    )
    written += parts.tail
    assert len(written) == parts.length
    assert parts.content_type == f"multipart/byteranges; boundary={parts.boundary}"
    assert b"Content-Range: bytes 5-9/10\r\n\r\n56789" in written


@given(st.text(max_size=60), st.integers(min_value=0, max_value=10**12))
def test_any_header_gives_ranges_inside_the_body_or_none(header: str, total: int) -> None:
    result = parse(header, total)
    if isinstance(result, list):
        assert result
        assert all(0 <= r.start <= r.end < total for r in result)
    else:
        assert result is None or result is UNSATISFIABLE


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 10**9))
def test_generated_ranges_round_trip(first: int, length: int, total: int) -> None:
    result = parse(f"bytes={first}-{first + length}", total)
    if first >= total:
        assert result is UNSATISFIABLE
    else:
        assert result == [ByteRange(first, min(first + length, total - 1))]
