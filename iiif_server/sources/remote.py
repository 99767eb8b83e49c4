"""What `web` and `trusted_web` share: name -> URL -> a downloaded local file.

A source is downloaded once into the `SourceStore` and served from there. Concurrent
requests for one missing (or expired) source share one download. With a `ttl`, a source
older than that is fetched again, conditionally; if that fails for any reason but a 404
the copy already downloaded is served (and the next request tries again). Upstream 404s
are remembered for `negative_ttl` seconds; no other failure is remembered at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol

from cachetools import TTLCache

from ..errors import (
    BadRequest,
    NotFound,
    ServerError,
    SourceError,
    SourceTooLarge,
    Unavailable,
    UpstreamError,
)
from ..imaging.probe import probe
from .base import SourceFile, SourceScope
from .fetch import HopPolicy, Validators
from .single_flight import SingleFlight
from .store import SourceStore, StoredSource

logger = logging.getLogger(__name__)

# Upstream 404s remembered at once, per type; the oldest are dropped first.
NEGATIVE_CACHE_ENTRIES = 4096
_LABEL_LENGTH = 80


class Locator(HopPolicy, Protocol):
    """A source kind's mapping of names to URLs, and its rules for redirects."""

    def url_for(self, name: str) -> str:
        """The URL to fetch for `name`; BadRequest when the name cannot be one."""
        ...


class Downloader(Protocol):
    """Fetches a source's URL into a local file: the web's `Fetcher`, an `S3Client`."""

    async def fetch(
        self,
        url: str,
        destination: Path,
        policy: HopPolicy,
        *,
        label: str,
        validators: Validators | None = None,
    ) -> Validators | None:
        """Its validators, or None when `validators` still hold (not modified)."""
        ...


def label_of(type_name: str, name: str) -> str:
    identifier = f"{type_name}:{name}"
    if len(identifier) > _LABEL_LENGTH:
        identifier = identifier[: _LABEL_LENGTH - 3] + "..."
    return identifier


def _check_image(path: Path, label: str, max_pixels: int) -> None:
    """Raise UpstreamError unless `path` is an image the server can read."""
    try:
        probe(str(path), max_pixels)
    except SourceTooLarge:
        pass  # an image all the same: kept, and refused by the service as a disk one would be
    except ServerError:
        raise UpstreamError(f"{label}: the upstream body is not a readable image") from None


class RemoteSource:
    def __init__(
        self,
        type_name: str,
        locator: Locator,
        fetcher: Downloader,
        store: SourceStore,
        *,
        ttl: float | None,
        negative_ttl: float,
        max_pixels: int,
    ) -> None:
        self._type = type_name
        self._max_pixels = max_pixels
        self._locator = locator
        self._fetcher = fetcher
        self._store = store
        self._ttl = ttl
        self._gone: TTLCache[str, bool] | None = (
            TTLCache(maxsize=NEGATIVE_CACHE_ENTRIES, ttl=negative_ttl) if negative_ttl > 0 else None
        )
        self._downloads: SingleFlight[SourceFile] = SingleFlight()

    async def resolve(self, name: str) -> SourceFile:
        label = label_of(self._type, name)
        try:
            url = self._locator.url_for(name)
        except BadRequest as error:
            raise BadRequest(f"{label}: {error.message}") from None
        if self.known_missing(url):
            raise NotFound(f"no image {label}")
        self._store.ensure_loaded()
        entry = self._store.lookup(self._type, url)
        if entry is not None and self._fresh(entry):
            return entry.file
        return await self._downloads.run(url, lambda: self._download(url, label, entry))

    def known_missing(self, url: str) -> bool:
        """True while a 404 for `url` is remembered."""
        return self._gone is not None and url in self._gone

    def note_missing(self, url: str) -> None:
        if self._gone is not None:
            self._gone[url] = True

    def stored(self, url: str) -> StoredSource | None:
        """The stored download of `url` if it is within its `ttl`."""
        self._store.ensure_loaded()
        entry = self._store.lookup(self._type, url)
        return entry if entry is not None and self._fresh(entry) else None

    def purge(self, name: str | None, *, files: bool) -> SourceScope:
        """Forget `name` (None: every name of this type): its download and a remembered 404."""
        if name is None:
            if self._gone is not None:
                self._gone.clear()
            self._store.purge(self._type, files=files)
            return SourceScope(folders=(str(self._store.root / self._type),))
        url = self._locator.url_for(name)
        if self._gone is not None:
            self._gone.pop(url, None)
        self._store.purge(self._type, url, files=files)
        return SourceScope(paths=frozenset({str(self._store.path_for(self._type, url))}))

    def _fresh(self, entry: StoredSource) -> bool:
        return self._ttl is None or time.time() - entry.fetched < self._ttl

    async def _download(self, url: str, label: str, previous: StoredSource | None) -> SourceFile:
        try:
            temp = self._store.temp_path(self._type, url)
        except OSError as error:
            raise self._store_failed(label, error) from None
        try:
            validators = await self._fetcher.fetch(
                url,
                temp,
                self._locator,
                label=label,
                validators=previous.validators if previous is not None else None,
            )
            if validators is None:  # 304: the copy we have is current
                assert previous is not None
                return self._store.renew(previous).file
            await asyncio.to_thread(_check_image, temp, label, self._max_pixels)
            try:
                adopted = self._store.adopt(
                    self._type,
                    url,
                    temp,
                    validators,
                    previous.file.mtime_ns if previous is not None else 0,
                )
            except OSError as error:
                raise self._store_failed(label, error) from None
            return adopted.file
        except NotFound:
            self.note_missing(url)
            if previous is not None:
                self._store.forget(previous)
            raise
        except (UpstreamError, Unavailable) as error:
            still_there = self._store.lookup(self._type, url) if previous is not None else None
            if still_there is None:
                raise
            logger.warning("%s: serving the earlier download; refreshing failed: %s", label, error)
            return still_there.file
        finally:
            self._store.discard(temp)

    @staticmethod
    def _store_failed(label: str, error: OSError) -> SourceError:
        logger.warning("%s: cannot store the download: %s", label, error.strerror or error)
        return SourceError(f"{label}: the downloaded source cannot be stored")
