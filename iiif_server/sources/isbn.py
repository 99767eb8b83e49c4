"""The `isbn` source: a book's cover, found through the cover providers, served as an image.

`isbn:9780415480635` asks the cover service (its cache first, then the
providers in the configured order) for the cover URL, then downloads that URL
through the web source machinery (`RemoteSource`: one download shared by
concurrent requests, the byte-bounded source store, every fetch limit). So
every IIIF operation works on covers, and a catalogue gets exactly-sized
images from one place instead of hot-linking the providers. No cover: 404.

The hosts of the configured provider URLs are trusted like a `web` type's
template host (a mirror may be internal); any other cover URL, such as one set
by hand, is held to `allow_private_addresses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..covers.isbn import cache_key
from ..errors import BadRequest, NotFound
from .base import SourceFile, SourceScope
from .fetch import same_host
from .remote import RemoteSource
from .trusted_web import fetchable


class CoverLookup(Protocol):
    async def ensure_started(self) -> None: ...

    async def first_cover(
        self, identifier: str, providers: Sequence[str] | None = None
    ) -> str | None: ...

    def provider_urls(self) -> list[str]: ...


class CoverUrlLocator:
    """Names are the cover URLs themselves, as the cover service found them."""

    def __init__(self, trusted_urls: Sequence[str]) -> None:
        self._trusted_urls = list(trusted_urls)

    def url_for(self, name: str) -> str:
        if not fetchable(name):
            raise BadRequest("the cover URL cannot be fetched")
        return name

    def trusts_host(self, url: str) -> bool:
        return any(same_host(url, trusted) for trusted in self._trusted_urls)

    def allows_redirect(self, url: str) -> bool:
        return fetchable(url)


class IsbnSource:
    def __init__(self, type_name: str, covers: CoverLookup, covers_source: RemoteSource) -> None:
        self._type = type_name
        self._covers = covers
        self._downloads = covers_source

    async def resolve(self, name: str) -> SourceFile:
        if cache_key(name) is None:
            raise NotFound(f"{self._type}:{name[:40]} is not an ISBN")
        await self._covers.ensure_started()
        url = await self._covers.first_cover(name)
        if url is None:
            raise NotFound(f"no cover for {self._type}:{name}")
        return await self._downloads.resolve(url)

    async def cover_url(self, name: str) -> str | None:
        """The download an ISBN is served from (the cover service's answer); None: no cover."""
        if cache_key(name) is None:
            raise BadRequest(f"{self._type}:{name[:40]} is not an ISBN")
        await self._covers.ensure_started()
        return await self._covers.first_cover(name)

    def purge(self, cover_url: str | None, *, files: bool) -> SourceScope:
        """Forget one cover's download (`cover_url`, see `cover_url()`), or (None) them all."""
        return self._downloads.purge(cover_url, files=files)
