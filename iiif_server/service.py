"""The image service: identifier -> source -> info -> derivative, with every cache in between.

Handlers call this and do HTTP only. Everything that can be answered from
memory or the derivative cache is answered here without touching a pool.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cached_property
from typing import Any, Protocol, TypeVar

from cachetools import LRUCache

from .cache import DerivativeCache, Group
from .config import Settings
from .iiif.image import ImageInfo
from .iiif.info import InfoOptions
from .iiif.params import Limits, Version
from .iiif.request import ImageRequest, canonical_path, parse_image_request
from .imaging.probe import MoreBytes, probe, probe_ranges
from .imaging.render import EncodeOptions, render
from .info_cache import InfoCache
from .sessions import SessionPeers, ZoomSessions
from .shared.tiers import SharedTiers
from .sources.base import SourceFile, SourceScope
from .sources.fetch import Fetcher
from .sources.isbn import CoverLookup
from .sources.registry import Identifier, SourceRegistry
from .workers import Job

T = TypeVar("T")

# Bump when the imaging output changes, so old derivatives are not served.
CACHE_KEY_VERSION = "3"  # 2: embedded ICC profiles are applied; 3: JPEG q73
# Sources fetched from elsewhere have their own freshness rules (ttl): remembered
# answers for them go back through the source after this long.
_HOT_RECHECK_SECONDS = 60.0


class TaskRunner(Protocol):
    """Where imaging work runs: a `workers.WorkerPool`, or this process for one-off commands."""

    size: int  # workers that can run tasks at once

    async def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        affinity: str | None = None,
        light: bool = False,
        prefer: str | None = None,
    ) -> T: ...

    async def submit_if_idle(self, *jobs: Job) -> bool:
        """Optional work (decodes ahead of need): run `jobs` only if every worker is idle now.

        False: skipped. The pool's owner decides, so fronts that share one see the same.
        """
        ...


class InProcessRunner:
    """Runs tasks right here: for commands that answer one question and exit."""

    size = 1

    async def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        affinity: str | None = None,
        light: bool = False,
        prefer: str | None = None,
    ) -> T:
        return fn(*args)

    async def submit_if_idle(self, *jobs: Job) -> bool:
        return False  # a one-off command does only what it is asked


@dataclass(frozen=True)
class ResolvedImage:
    identifier: Identifier
    source: SourceFile
    info: ImageInfo

    @cached_property
    def last_modified(self) -> tuple[datetime, str]:
        """The source's mtime in whole seconds, and as an HTTP date."""
        modified = datetime.fromtimestamp(int(self.source.mtime), UTC)
        return modified, format_datetime(modified, usegmt=True)

    @property
    def key(self) -> str:
        """The file and its served page: one image of a multi-page source."""
        page = self.info.page
        return str(self.source.path) if page == 0 else f"{self.source.path}|page {page}"


@dataclass(frozen=True)
class HotDerivative:
    """A finished derivative kept in the front process's memory, with its source's identity."""

    derivative: Derivative
    body: bytes
    expires: float  # time.monotonic(); sources that are not plain files are re-checked

    @property
    def nbytes(self) -> int:
        return len(self.body) + 1024  # the body and, roughly, what describes it


@dataclass(frozen=True)
class Derivative:
    """One requested output: its resolved request, cache key and validators."""

    image: ResolvedImage
    request: ImageRequest
    canonical: str  # canonical `{region}/{size}/{rotation}/{quality}.{format}` of the version
    key: str

    @cached_property
    def group(self) -> Group:
        """What the derivative is made from, so that a purge of its source finds it."""
        return Group(self.image.identifier.type.name, str(self.image.source.path))

    @cached_property
    def etag(self) -> str:  # kept: a remembered derivative answers many requests
        return '"' + hashlib.sha256(self.key.encode()).hexdigest()[:40] + '"'


class ImageService:
    def __init__(
        self,
        settings: Settings,
        size_pool: TaskRunner,
        image_pool: TaskRunner,
        derivatives: DerivativeCache,
        covers: CoverLookup | None = None,
        shared: SharedTiers | None = None,
    ) -> None:
        self._settings = settings
        self._shared_derivatives = None if shared is None else shared.derivatives
        self._size_pool = size_pool
        shared_infos = None if shared is None else shared.infos
        self._sources = SourceRegistry(settings, covers, self._probe_ranges, shared_infos)
        self._image_pool = image_pool
        self._derivatives = derivatives
        self._infos = InfoCache(settings.info_cache_size, self._probe, shared_infos)
        self._sessions = ZoomSessions(image_pool)
        # URL path -> finished bytes: a repeated tile costs one stat(), no parsing, no disk read.
        self._hot: LRUCache[str, HotDerivative] = LRUCache(
            maxsize=settings.hot_cache_bytes, getsizeof=lambda entry: entry.nbytes
        )
        self.hot_hits = 0
        self.hot_misses = 0
        self.renders = 0  # derivatives made by the image pool (not found in any cache)
        self.limits = Limits(
            max_width=settings.max_width,
            max_height=settings.max_height,
            max_area=settings.max_area,
            allow_upscaling=settings.allow_upscaling,
            confined_size=settings.confined_size,
        )
        self._encode_options = EncodeOptions(
            jpeg_quality=settings.jpeg_quality,
            jpeg_optimize=settings.jpeg_optimize,
            jpeg_progressive=settings.jpeg_progressive,
            png_compress_level=settings.png_compress_level,
            webp_quality=settings.webp_quality,
            webp_method=settings.webp_method,
        )

    async def _probe(self, source: SourceFile, page: int | None) -> ImageInfo:
        return await self._size_pool.submit(
            probe, str(source.path), self._settings.max_source_pixels, page, self._settings.pdf_dpi
        )

    async def _probe_ranges(
        self, ranges: Sequence[tuple[int, bytes]], size: int, page: int | None
    ) -> ImageInfo | MoreBytes:
        return await self._size_pool.submit(
            probe_ranges, list(ranges), size, self._settings.max_source_pixels, page
        )

    async def describe(self, identifier_text: str) -> ResolvedImage:
        """`resolve` for info.json: an object in a store is not downloaded for it."""
        identifier = self._sources.parse(identifier_text)
        peeked = await self._sources.peek(identifier)
        info = peeked.info
        if info is None:
            info = await self._infos.get(peeked.file, identifier.page)
        return ResolvedImage(identifier, peeked.file, info)

    async def resolve(self, identifier_text: str) -> ResolvedImage:
        identifier = self._sources.parse(identifier_text)
        source = await self._sources.resolve(identifier)
        info = await self._infos.get(source, identifier.page)
        return ResolvedImage(identifier, source, info)

    def described(self, image: ResolvedImage) -> None:
        """Note that a viewer fetched this image's info.json: a zoom session may follow,
        whose decode may start now (`sessions`)."""
        if not self._sessions.described(image.key):
            return
        if self._shared_derivatives is None:
            self._prepare(image)
        else:
            self._sessions.start(self._from_bundles_or_prepare(image))

    def share_sessions(self, peers: SessionPeers) -> None:
        """Fronts sharing pools: see `sessions.ZoomSessions.share`."""
        self._sessions.share(peers)

    async def _from_bundles_or_prepare(self, image: ResolvedImage) -> None:
        """Read the session's bundles from the shared tier now; a node that finds
        tiles there decodes nothing (another node made them: it will render little)."""
        assert self._shared_derivatives is not None
        type_name = image.identifier.type.name
        found = await self._shared_derivatives.prefetch(type_name, str(image.source.path))
        if not found:
            self._prepare(image)

    def _prepare(self, image: ResolvedImage) -> None:
        source = image.source
        self._sessions.prepare(image.key, str(source.path), source.identity, image.info)

    @property
    def infos(self) -> InfoCache:
        return self._infos

    def info_options(self, image: ResolvedImage) -> InfoOptions:
        type_settings = image.identifier.type
        return InfoOptions(
            limits=self.limits,
            tile_size=self._settings.tile_size,
            min_sizes_size=self._settings.min_sizes_size,
            rights=type_settings.rights,
            attribution=type_settings.attribution,
            logo=type_settings.logo,
        )

    def plan(
        self,
        image: ResolvedImage,
        version: Version,
        region: str,
        size: str,
        rotation: str,
        quality_format: str,
    ) -> Derivative:
        request = parse_image_request(
            version, region, size, rotation, quality_format, image.info, self.limits
        )
        # Keyed by the file and page, not the identifier: `a`, `a.jpg` and `type:a` share
        # entries, and so do a TIFF's largest page and its number.
        key = "|".join((CACHE_KEY_VERSION, image.key, image.source.identity, request.canonical))
        return Derivative(image, request, canonical_path(version, request, image.info), key)

    async def purge(self, type_name: str | None, name: str | None, *, files: bool) -> SourceScope:
        """Forget an identifier, a type or (None) everything in this process's sources, infos
        and hot copies; the scope of source files it reached, for the other caches.

        `files`: also delete downloaded sources (once per source folder, not per process).
        """
        if name is not None:
            name = await self._sources.purge_name(type_name, name)
            if name is None:  # an ISBN without a cover: nothing of it was downloaded
                return SourceScope()
        scope = self._sources.purge(type_name, name, files=files)
        self._infos.purge(scope)
        stale = [
            url_path
            for url_path, entry in self._hot.items()
            if scope.matches(str(entry.derivative.image.source.path))
        ]
        for url_path in stale:
            del self._hot[url_path]
        return scope

    @property
    def fetcher(self) -> Fetcher:
        return self._sources.fetcher

    def parse_identifier(self, identifier: str) -> tuple[str, str]:
        """(type, name) of an identifier, the default type filled in; NotFound if unknown."""
        parsed = self._sources.parse(identifier)
        return parsed.type.name, parsed.name

    def hot(self, url_path: str) -> HotDerivative | None:
        """The remembered answer for this exact URL path, if its source has not changed."""
        entry = self._hot.get(url_path)
        if entry is None:
            self.hot_misses += 1
            return None
        source = entry.derivative.image.source
        try:
            stat = source.path.stat()
        except OSError:
            stat = None
        fresh = stat is not None and (stat.st_size, stat.st_mtime_ns) == (
            source.size,
            source.mtime_ns,
        )
        if not fresh or time.monotonic() > entry.expires:
            self._hot.pop(url_path, None)
            self.hot_misses += 1
            return None
        self.hot_hits += 1
        return entry

    def remember(self, url_path: str, derivative: Derivative, body: bytes) -> None:
        is_plain_file = derivative.image.identifier.type.source == "disk"
        expires = math.inf if is_plain_file else time.monotonic() + _HOT_RECHECK_SECONDS
        entry = HotDerivative(derivative, body, expires)
        if entry.nbytes <= self._hot.maxsize // 8:  # a few huge images must not flush the tiles
            self._hot[url_path] = entry

    def cached(self, derivative: Derivative) -> bytes | None:
        return self._derivatives.get(derivative.key, derivative.group)

    async def render(self, derivative: Derivative) -> bytes:
        image = derivative.image
        self._sessions.followed(image.key)
        shared = self._shared_derivatives
        group = derivative.group
        # A download's identity is its mtime here; other nodes know it by its ETag.
        etag = None if shared is None else self._sources.store.etag_of(image.source)
        identity = None if etag is None else (image.source.identity, "etag:" + etag)

        session = self._sessions.in_session(image.key)

        async def compute() -> bytes:
            if shared is not None:
                data = await shared.get(
                    group.type, group.source, derivative.key, identity, session=session
                )
                if data is not None:
                    return data
            data = await self._image_pool.submit(
                render,
                str(image.source.path),
                image.source.identity,
                image.info,
                derivative.request,
                self._encode_options,
                session,
                # One image, one worker: its decoded-image cache is reused; the
                # pages of one document spread over the workers.
                affinity=image.key,
                prefer=self._sessions.preferred(image.key, image.info, derivative.request),
            )
            self.renders += 1
            if shared is not None:
                shared.put_soon(
                    group.type, group.source, derivative.key, data, identity, session=session
                )
            return data

        return await self._derivatives.get_or_compute(derivative.key, compute, derivative.group)
