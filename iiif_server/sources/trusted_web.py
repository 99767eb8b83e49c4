"""The `trusted_web` source: the name is the URL itself, URL-safe base64 encoded.

The decoded URL must match the type's `regex` in full (as `re.fullmatch`: anchored at
both ends however the regex is written), and so must every redirect on the way. No
host is trusted: internal addresses are refused unless `allow_private_addresses`.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

from ..errors import BadRequest

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# Longer names are not URLs anyone means (and would only cost decoding time).
MAX_NAME_LENGTH = 8192


def decode_name(name: str) -> str:
    """The URL in `name` (URL-safe base64, padding optional); BadRequest if it is none."""
    if len(name) > MAX_NAME_LENGTH or not _BASE64URL.fullmatch(name):
        raise BadRequest("the name is not URL-safe base64")
    unpadded = name.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadRequest("the name is not URL-safe base64 of a URL") from None


def encode_url(url: str) -> str:
    """The name of `url` (unpadded URL-safe base64), for clients and tests."""
    return base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def fetchable(url: str) -> bool:
    """An absolute http(s) URL with a host and nothing a request line cannot carry."""
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class TrustedWebLocator:
    def __init__(self, regex: str) -> None:
        self._pattern = re.compile(regex)

    def url_for(self, name: str) -> str:
        url = decode_name(name)
        if not self.allows_redirect(url):
            raise BadRequest("the URL is not allowed for this type")
        return url

    def trusts_host(self, url: str) -> bool:
        return False

    def allows_redirect(self, url: str) -> bool:
        return fetchable(url) and self._pattern.fullmatch(url) is not None
