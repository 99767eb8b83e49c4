"""The editor's listing, read as a stream: `{id: {mode: URL or null}}`, validated entry by entry.

The whole document is never held: `read_listing` yields one id at a time
from ijson's C parser. A listing that is not JSON, not that shape, or cut
short raises `ListingError` (the sync then changes nothing). A redirect
target that is not an absolute http(s) URL without control characters is
dropped and counted, as is an id that is empty or too long for the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import ijson

MAX_ID_BYTES = 255
MAX_URL_CHARS = 8000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Location is a Latin-1 header: anything outside printable ASCII travels percent-encoded.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x21-\x7e]")
# The common case, checked at C speed: printable ASCII, http(s), a host, then a path or nothing.
_PLAIN_URL = re.compile(
    r"(?i)https?://[A-Za-z0-9._~%!$&'()*+,;=-]+(?::[0-9]*)?(?:[/?#][\x21-\x7e]*)?"
)
_MODE = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,100}")


class ListingError(ValueError):
    """The listing as a whole is unusable: not JSON, cut short, or not `{id: {mode: URL}}`."""


@dataclass
class ListingCounts:
    ids: int = 0
    urls: int = 0
    dropped_urls: int = 0  # targets that are not absolute http(s) URLs without control chars
    dropped_ids: int = 0  # empty ids, or longer than MAX_ID_BYTES in UTF-8


def redirect_target(value: Any) -> str | None:
    """`value` as a safe `Location`, or None when it must be dropped."""
    if isinstance(value, str) and len(value) <= MAX_URL_CHARS and _PLAIN_URL.fullmatch(value):
        return value
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS or _CONTROL.search(value):
        return None
    if not _encodable(value):  # a lone surrogate from a `\ud800` escape
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced '[' in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return _NOT_PRINTABLE_ASCII.sub(_percent_encode, value)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_id(identifier: str) -> bool:
    return bool(identifier) and _encodable(identifier) and len(identifier.encode()) <= MAX_ID_BYTES


def _percent_encode(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def read_listing(
    stream: IO[bytes], counts: ListingCounts
) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Yield `(id, [(mode, URL), ...])`, null and dropped URLs left out; fill `counts`."""
    start = stream.read(64).lstrip()[:1]
    if start != b"{":
        # ijson would yield nothing from `[...]`: the shape is checked before it starts.
        if start and start in b'["-0123456789tfn':
            raise ListingError("wrong shape: the listing is not a JSON object")
        raise ListingError("invalid JSON: the listing does not start with '{'")
    stream.seek(0)
    # The loop runs two million times: checks that pass for plain ASCII come first.
    plain_url = _PLAIN_URL.fullmatch
    good_modes: set[str] = set()
    ids = urls_kept = dropped_urls = dropped_ids = 0
    try:
        for identifier, entry in ijson.kvitems(stream, "", use_float=True, buf_size=1 << 20):
            if type(entry) is not dict:
                raise ListingError(f"wrong shape: the entry of {identifier[:80]!r} is no object")
            short_ascii = identifier.isascii() and 0 < len(identifier) <= MAX_ID_BYTES
            if not short_ascii and not _valid_id(identifier):
                dropped_ids += 1
                continue
            urls = []
            for mode, value in entry.items():
                if value is None:
                    continue
                if mode not in good_modes:
                    if not _MODE.fullmatch(mode):
                        dropped_urls += 1
                        continue
                    if len(good_modes) < 1000:
                        good_modes.add(mode)
                if type(value) is str and len(value) <= MAX_URL_CHARS and plain_url(value):
                    urls.append((mode, value))
                    continue
                target = redirect_target(value)
                if target is None:
                    dropped_urls += 1
                    continue
                urls.append((mode, target))
            ids += 1
            urls_kept += len(urls)
            yield identifier, urls
    except ijson.JSONError as error:
        raise ListingError(f"invalid JSON: {str(error)[:200]}") from None
    counts.ids, counts.urls = ids, urls_kept
    counts.dropped_urls, counts.dropped_ids = dropped_urls, dropped_ids
