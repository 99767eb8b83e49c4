"""Cover providers: Google Books (`gb`), Open Library (`ol`) and Amazon (`aws`).

Each turns a batch of normalised keys into `{key: URL or None}`; None is a
confirmed "no cover". A key missing from the answer is unknown. A request that
fails (network, timeout, HTTP error, a body that is not what the provider
sends) raises `ProviderError`: the caller caches nothing for it. Bodies are
parsed as data and never evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from .. import __version__
from .config import CoversSettings, ProviderSettings
from .isbn import isbn10

USER_AGENT = f"iiif-server/{__version__} (book covers)"
# Amazon answers unknown ISBNs with a 1x1 GIF of this many bytes.
AMAZON_PLACEHOLDER_BYTES = 43
# `_GBSBookInfo = {...};`, optionally with `var`: the object is JSON.
_GB_ASSIGNMENT = re.compile(r"\s*(?:var\s+)?_GBSBookInfo\s*=\s*(\{.*\})\s*;?\s*", re.DOTALL)
# A cover URL goes into an <img src> in the catalogue: nothing but plain http(s).
_SAFE_URL = re.compile(r"https?://[^\s\"'<>\\]+")


class ProviderError(Exception):
    """The provider did not answer usefully; nothing may be cached from this attempt."""


class Provider(Protocol):
    name: str
    batch_size: int

    async def lookup(self, keys: Sequence[str]) -> dict[str, str | None]: ...


def safe_url(value: Any) -> str | None:
    return value if isinstance(value, str) and _SAFE_URL.fullmatch(value) else None


def gb_cover_url(thumbnail: str) -> str:
    """Coce's rewrite: a larger image (zoom=1), plain `&`, no page-curl effect."""
    return thumbnail.replace("\\u0026", "&").replace("&edge=curl", "").replace("zoom=5", "zoom=1")


def parse_gb(body: bytes, keys: Sequence[str]) -> dict[str, str | None]:
    match = _GB_ASSIGNMENT.fullmatch(body.decode("utf-8", "replace"))
    if match is None:
        raise ProviderError("gb: the answer is not a _GBSBookInfo assignment")
    books = _json_object(match.group(1), "gb")
    found: dict[str, str | None] = dict.fromkeys(keys)
    for key in keys:
        book = books.get(key)
        if isinstance(book, Mapping) and isinstance(book.get("thumbnail_url"), str):
            found[key] = safe_url(gb_cover_url(book["thumbnail_url"]))
    return found


def parse_ol(body: bytes, keys: Sequence[str], image_size: str) -> dict[str, str | None]:
    books = _json_object(body.decode("utf-8", "replace"), "ol")
    found: dict[str, str | None] = dict.fromkeys(keys)
    for key in keys:
        book = books.get(f"ISBN:{key}")
        cover = book.get("cover") if isinstance(book, Mapping) else None
        if isinstance(cover, Mapping):
            found[key] = safe_url(cover.get(image_size))
    return found


def _json_object(text: str, provider: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ProviderError(f"{provider}: the answer is not JSON") from None
    if not isinstance(value, Mapping):
        raise ProviderError(f"{provider}: the answer is not a JSON object")
    return value


class _HttpProvider:
    batch_size = 1

    def __init__(
        self, name: str, settings: ProviderSettings, client: AsyncHTTPClient, timeout: float
    ) -> None:
        self.name = name
        self._settings = settings
        self._client = client
        self._timeout = timeout

    async def _fetch(self, url: str, method: str = "GET") -> HTTPResponse:
        request = HTTPRequest(
            url,
            method=method,
            headers={"User-Agent": USER_AGENT},
            connect_timeout=self._timeout,
            request_timeout=self._timeout,
        )
        response = await self._client.fetch(request, raise_error=False)
        if response.code == 599 or response.code >= 500:
            raise ProviderError(f"{self.name}: {response.code} {response.reason or response.error}")
        return response

    async def lookup(self, keys: Sequence[str]) -> dict[str, str | None]:
        raise NotImplementedError

    async def _fetch_ok(self, url: str) -> bytes:
        response = await self._fetch(url)
        if response.code != 200:
            raise ProviderError(f"{self.name}: HTTP {response.code}")
        return response.body


class GoogleBooks(_HttpProvider):
    batch_size = 50

    async def lookup(self, keys: Sequence[str]) -> dict[str, str | None]:
        bibkeys = ",".join(quote(key) for key in keys)
        url = f"{self._settings.base_url}?bibkeys={bibkeys}&jscmd=viewapi&hl=en"
        return parse_gb(await self._fetch_ok(url), keys)


class OpenLibrary(_HttpProvider):
    batch_size = 50

    async def lookup(self, keys: Sequence[str]) -> dict[str, str | None]:
        bibkeys = ",".join(f"ISBN:{quote(key)}" for key in keys)
        url = f"{self._settings.base_url}?bibkeys={bibkeys}&jscmd=data&format=json"
        return parse_ol(await self._fetch_ok(url), keys, self._settings.image_size)


class Amazon(_HttpProvider):
    """One HEAD per ISBN-10; the 43-byte placeholder and a 404 mean no cover."""

    batch_size = 1

    async def lookup(self, keys: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for key in keys:
            number = isbn10(key)
            if number is None:
                found[key] = None
                continue
            url = f"{self._settings.base_url}/{number}.01.MZZZZZZZZZ.jpg"
            response = await self._fetch(url, method="HEAD")
            if response.code not in (200, 404):
                raise ProviderError(f"aws: HTTP {response.code}")
            length = response.headers.get("Content-Length", "").strip()
            placeholder = length == str(AMAZON_PLACEHOLDER_BYTES)
            found[key] = url if response.code == 200 and not placeholder else None
        return found


def make_providers(settings: CoversSettings, client: AsyncHTTPClient) -> dict[str, Provider]:
    """The enabled providers, by name."""
    kinds: dict[str, type[_HttpProvider]] = {"gb": GoogleBooks, "ol": OpenLibrary, "aws": Amazon}
    return {
        name: kinds[name](name, settings.provider(name), client, settings.deadline)
        for name in settings.providers
    }
