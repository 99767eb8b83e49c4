"""Identifiers `type:name` -> the configured type's source."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Settings, TypeSettings
from ..covers.service import CoverService
from ..covers.store import MemoryStore
from ..errors import NotFound
from ..iiif.image import ImageInfo
from ..imaging.probe import MoreBytes, probe_ranges
from .base import Source, SourceFile, SourceScope
from .disk import DiskSource
from .fetch import Fetcher, FetchLimits
from .isbn import CoverLookup, CoverUrlLocator, IsbnSource
from .remote import Downloader, Locator, RemoteSource
from .s3 import HeaderProbe, Peeked, S3Locator, S3Source, SharedHeaders
from .s3_client import S3Client
from .store import SourceStore
from .trusted_web import TrustedWebLocator
from .web import WebLocator

# A page number longer than this is no page of anything.
_MAX_PAGE_DIGITS = 6


@dataclass(frozen=True)
class Identifier:
    """`type:name`, with the 1-based page of a `name;page` suffix (None: the default page)."""

    type: TypeSettings
    name: str
    page: int | None = None


class SourceRegistry:
    def __init__(
        self,
        settings: Settings,
        covers: CoverLookup | None = None,
        header_probe: HeaderProbe | None = None,
        shared_infos: SharedHeaders | None = None,
    ) -> None:
        """`header_probe` probes a header from byte ranges (s3 types); default: a thread.
        `shared_infos`: infos of s3 objects other nodes described (`shared_info`)."""
        self._types = settings.types
        self._default_type = settings.default_type
        self._page_delimiter = settings.page_delimiter
        self._sources: dict[str, Source] = {}
        self._peekable: dict[str, S3Source] = {}

        async def in_thread(
            ranges: Sequence[tuple[int, bytes]], size: int, page: int | None
        ) -> ImageInfo | MoreBytes:
            pixels = settings.max_source_pixels
            return await asyncio.to_thread(probe_ranges, ranges, size, pixels, page)

        web_types = [name for name, t in settings.types.items() if t.source != "disk"]
        # One fetcher and one byte-bounded store, shared by every web type.
        self.fetcher = Fetcher(
            FetchLimits(
                max_fetches=settings.max_http_fetches,
                max_waiting=settings.max_http_waiting,
                connect_timeout=settings.http_connect_timeout,
                total_timeout=settings.http_timeout,
                max_redirects=settings.max_redirects,
                max_bytes=settings.max_source_bytes,
                allow_private_addresses=settings.allow_private_addresses,
            )
        )
        # Front processes share the folders; their budgets together bound them.
        self.store = SourceStore(
            settings.source_path, web_types, settings.source_cache_max_bytes // settings.processes
        )
        for name, type_settings in settings.types.items():
            if type_settings.source == "disk":
                self._sources[name] = DiskSource(settings.source_path / name)
                continue
            locator: Locator
            downloader: Downloader = self.fetcher
            if type_settings.source == "s3":
                assert type_settings.s3 is not None  # checked by the config
                client = S3Client(type_settings.s3, self.fetcher)
                locator, downloader = S3Locator(client), client
            elif type_settings.source == "isbn":
                # Without the server's cover service (one-off commands): a private one.
                covers = covers or CoverService(settings.covers, MemoryStore(1024))
                locator = CoverUrlLocator(covers.provider_urls())
            elif type_settings.source == "web":
                assert type_settings.url is not None  # checked by the config
                locator = WebLocator(type_settings.url)
            else:
                assert type_settings.regex is not None
                locator = TrustedWebLocator(type_settings.regex)
            remote = RemoteSource(
                name,
                locator,
                downloader,
                self.store,
                ttl=type_settings.ttl,
                negative_ttl=settings.negative_cache_ttl,
                max_pixels=settings.max_source_pixels,
            )
            if type_settings.source == "isbn":
                assert covers is not None  # made above
                self._sources[name] = IsbnSource(name, covers, remote)
            elif type_settings.source == "s3":
                s3 = S3Source(
                    name,
                    client,
                    remote,
                    self.store,
                    header_probe or in_thread,
                    ttl=type_settings.ttl,
                    shared=shared_infos,
                )
                self._sources[name] = self._peekable[name] = s3
            else:
                self._sources[name] = remote

    def parse(self, identifier: str) -> Identifier:
        """`type:name[;page]`, or a bare name of the default type; unknown types are a 404.

        A page suffix is the delimiter followed by digits only, so names that
        merely contain the delimiter are still names.
        """
        type_name, colon, name = identifier.partition(":")
        if not colon:
            if self._default_type is None:
                raise NotFound(f"identifier {identifier!r} has no type and there is no default")
            type_name, name = self._default_type, identifier
        type_settings = self._types.get(type_name)
        if type_settings is None:
            raise NotFound(f"unknown identifier type {type_name!r}")
        base, delimiter, suffix = name.rpartition(self._page_delimiter)
        if delimiter and base and suffix.isascii() and suffix.isdigit():
            if len(suffix) > _MAX_PAGE_DIGITS or int(suffix) == 0:
                raise NotFound(f"no page {suffix[:_MAX_PAGE_DIGITS]} in {base!r}")
            return Identifier(type_settings, base, int(suffix))
        return Identifier(type_settings, name)

    async def resolve(self, identifier: Identifier) -> SourceFile:
        return await self._sources[identifier.type.name].resolve(identifier.name)

    async def peek(self, identifier: Identifier) -> Peeked:
        """Enough to describe the image: for an s3 type, no download of an object never
        seen (see s3.py); for every other kind, the file `resolve` gives."""
        s3 = self._peekable.get(identifier.type.name)
        if s3 is None:
            return Peeked(await self.resolve(identifier))
        return await s3.peek(identifier.name, identifier.page)

    def s3_source(self, type_name: str) -> S3Source | None:
        return self._peekable.get(type_name)

    async def purge_name(self, type_name: str | None, name: str | None) -> str | None:
        """The name `purge` takes for `type_name:name`: an ISBN's is its cover's URL.

        None for an ISBN without a cover: nothing of it was downloaded, nothing to forget.
        """
        source = self._sources.get(type_name) if type_name is not None else None
        if isinstance(source, IsbnSource) and name is not None:
            return await source.cover_url(name)
        return name

    def purge(self, type_name: str | None, name: str | None, *, files: bool) -> SourceScope:
        """Forget what the sources remember of `type_name:name`, of a type, or (None) of all.

        The scope returned names the local files those identifiers may have been
        served from. Raises NotFound for an unknown type, BadRequest for a bad name.
        """
        if type_name is None:
            for each in self._sources.values():
                each.purge(None, files=files)
            return SourceScope(everything=True)
        source = self._sources.get(type_name)
        if source is None:
            raise NotFound(f"unknown identifier type {type_name!r}")
        return source.purge(name, files=files)
