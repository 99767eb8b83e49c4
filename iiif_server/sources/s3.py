"""The `s3` source: `{prefix}{name}` in the type's bucket of an S3-compatible store.

Names are confined to the prefix as disk names are to their folder: no empty, `.` or
`..` segment, no leading `/`, no NUL (400); an encoded slash is a slash.

Two ways in:
- `resolve` (image work): the whole object, downloaded once into the source store the
  web kinds use (`RemoteSource`: single flight, atomic, LRU, revalidated with its ETag
  after the type's `ttl`).
- `peek` (info.json): an object already downloaded is probed from disk; any other is
  probed from its first `HEADER_BYTES` read with a ranged GET, plus further ranges
  when the format's header reaches past them, up to `MAX_HEADER_BYTES`; beyond that
  (a WebP is parsed whole, say) the object is downloaded after all. What a header read
  found is remembered per object (bounded, LRU) and reused until the type's `ttl`,
  after which the first range is read again and compared by ETag.
With infos shared between nodes (`shared_info`), an object's ETag and size are asked
first with a one-byte range, and its info looked up by them: an object another node
described is neither read nor probed here. Otherwise (and with Redis down) as above,
with the info then shared under that ETag.
Nothing is remembered from a failure but a 404 (`negative_cache_ttl`, as for the web).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

from cachetools import LRUCache

from ..errors import BadRequest, NotFound, SourceError, SourceTooLarge, UpstreamError
from ..iiif.image import ImageInfo
from ..imaging.probe import MoreBytes
from .base import SourceFile, SourceScope
from .remote import RemoteSource, label_of
from .s3_client import ObjectRange, S3Client
from .single_flight import SingleFlight
from .store import SourceStore

# The first ranged GET: every JPEG, PNG, TIFF and JPEG 2000 header the tests and the
# benchmark make fits in it, with room for EXIF and an ICC profile.
HEADER_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_HEADER_READS = 6
HEADS_REMEMBERED = 4096
# The tip read with shared infos: enough for the store to give the ETag and size.
TIP_BYTES = 1
# S3 keys are at most 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024

# (offset, bytes) ranges, the object's size and the page (1-based; None: the default
# one) -> its info, or the bytes still needed.
HeaderProbe = Callable[
    [Sequence[tuple[int, bytes]], int, int | None], Awaitable[ImageInfo | MoreBytes]
]


class SharedHeaders(Protocol):
    """Infos other nodes found (`shared.infos.SharedInfos`), by path, page and identity."""

    def available(self) -> bool: ...

    async def lookup(self, path: str, page: int | None, identity: str) -> ImageInfo | None: ...

    async def store(self, path: str, page: int | None, identity: str, info: ImageInfo) -> None: ...


def object_key(prefix: str, name: str) -> str:
    """The key of `name` under `prefix`; never a key outside it."""
    if "\x00" in name:
        raise BadRequest("identifier contains a NUL byte")
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise NotFound(f"no image {name!r}")
    key = prefix + name
    try:
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise NotFound(f"no image {name[:40]!r}...")
    except UnicodeEncodeError:
        raise BadRequest("the name is not valid text") from None
    return key


class S3Locator:
    """Names -> object URLs (path-style) in one bucket under one prefix."""

    def __init__(self, client: S3Client) -> None:
        self._client = client
        self._prefix = client.settings.prefix

    def url_for(self, name: str) -> str:
        return self._client.url_for(object_key(self._prefix, name))

    # The store is the operator's, and does not redirect: there are no hops to judge.
    def trusts_host(self, url: str) -> bool:
        return True

    def allows_redirect(self, url: str) -> bool:
        return False


@dataclass(frozen=True)
class Peeked:
    """What `peek` found: a file, and its info when a header read already gave it.

    Without `info`, `file` is a local file to probe as any other. With it, `file` is
    where the download will be kept, with the object's size and Last-Modified.
    """

    file: SourceFile
    info: ImageInfo | None = None


@dataclass(frozen=True)
class _Head:
    peeked: Peeked
    etag: str | None
    checked: float  # time.time() of the read that confirmed it


def _mtime_ns(last_modified: str | None) -> int:
    try:
        return int(parsedate_to_datetime(last_modified or "").timestamp() * 10**9)
    except (TypeError, ValueError):
        return time.time_ns()


def _merge(ranges: list[tuple[int, bytes]], start: int, data: bytes) -> list[tuple[int, bytes]]:
    """`ranges` with `data` at `start` added, sorted, without overlaps."""
    merged: list[tuple[int, bytes]] = []
    for offset, chunk in sorted([*ranges, (start, data)]):
        if merged and offset <= merged[-1][0] + len(merged[-1][1]):
            last_offset, last = merged[-1]
            tail = chunk[last_offset + len(last) - offset :]
            merged[-1] = (last_offset, last + tail)
        else:
            merged.append((offset, chunk))
    return merged


class S3Source:
    def __init__(
        self,
        type_name: str,
        client: S3Client,
        remote: RemoteSource,
        store: SourceStore,
        probe: HeaderProbe,
        *,
        ttl: float | None,
        shared: SharedHeaders | None = None,
    ) -> None:
        self._type = type_name
        self._shared = shared
        self.client = client
        self._locator = S3Locator(client)
        self._remote = remote
        self._store = store
        self._probe = probe
        self._ttl = ttl
        self._heads: LRUCache[tuple[str, int | None], _Head] = LRUCache(maxsize=HEADS_REMEMBERED)
        self._reads: SingleFlight[Peeked] = SingleFlight()

    async def resolve(self, name: str) -> SourceFile:
        return await self._remote.resolve(name)

    def purge(self, name: str | None, *, files: bool) -> SourceScope:
        """Forget `name` (None: every name): its download, 404 and header reads."""
        scope = self._remote.purge(name, files=files)
        if name is None:
            self._heads.clear()
        else:
            url = self._locator.url_for(name)
            for key in [key for key in self._heads if key[0] == url]:
                del self._heads[key]
        return scope

    async def peek(self, name: str, page: int | None = None) -> Peeked:
        label = label_of(self._type, name)
        try:
            url = self._locator.url_for(name)
        except BadRequest as error:
            raise BadRequest(f"{label}: {error.message}") from None
        if self._remote.known_missing(url):
            raise NotFound(f"no image {label}")
        stored = self._remote.stored(url)
        if stored is not None:
            return Peeked(stored.file)
        head = self._heads.get((url, page))
        if head is not None and (self._ttl is None or time.time() - head.checked < self._ttl):
            return head.peeked
        return await self._reads.run(
            f"{page}|{url}", lambda: self._read_head(name, page, url, label, head)
        )

    async def _read_head(
        self, name: str, page: int | None, url: str, label: str, known: _Head | None
    ) -> Peeked:
        shared = self._shared if self._shared is not None and self._shared.available() else None
        tip = await self._read_first(url, page, TIP_BYTES if shared else HEADER_BYTES, label)
        etag = tip.validators.etag
        if known is not None and etag is not None and known.etag == etag:
            return self._remember(url, page, known.peeked, etag)
        file = SourceFile(
            self._store.path_for(self._type, url),
            tip.size,
            _mtime_ns(tip.validators.last_modified),
        )
        identity = f"s3:{etag}"
        if shared is not None and etag is not None:
            info = await shared.lookup(str(file.path), page, identity)
            if info is not None:
                return self._remember(url, page, Peeked(file, info), etag)
        first = tip
        if len(tip.data) < min(HEADER_BYTES, tip.size):
            first = await self.client.read_range(url, 0, HEADER_BYTES, label=label, if_match=etag)
        ranges = [(0, first.data)]
        for _read in range(MAX_HEADER_READS):
            outcome = await self._probe_header(ranges, first.size, page, label)
            if isinstance(outcome, ImageInfo):
                if shared is not None and etag is not None:
                    await shared.store(str(file.path), page, identity, outcome)
                return self._remember(url, page, Peeked(file, outcome), etag)
            if (outcome.start, outcome.end) == (0, first.size):
                break  # only the whole file will do
            have = sum(len(chunk) for _, chunk in ranges)
            # At least as much again as read so far: few rounds for a header far in.
            end = min(first.size, max(outcome.end, outcome.start + have))
            if have + end - outcome.start > MAX_HEADER_BYTES:
                break
            more = await self.client.read_range(url, outcome.start, end, label=label, if_match=etag)
            if not more.data:
                break
            ranges = _merge(ranges, outcome.start, more.data)
        # The header is large or spread out: reading the object once is cheaper.
        return Peeked(await self._remote.resolve(name))

    async def _read_first(self, url: str, page: int | None, end: int, label: str) -> ObjectRange:
        try:
            return await self.client.read_range(url, 0, end, label=label)
        except NotFound:
            self._remote.note_missing(url)
            self._heads.pop((url, page), None)
            raise

    def _remember(self, url: str, page: int | None, peeked: Peeked, etag: str | None) -> Peeked:
        self._heads[url, page] = _Head(peeked, etag, time.time())
        return peeked

    async def _probe_header(
        self, ranges: Sequence[tuple[int, bytes]], size: int, page: int | None, label: str
    ) -> ImageInfo | MoreBytes:
        try:
            return await self._probe(ranges, size, page)
        except (SourceTooLarge, NotFound):
            raise  # an image all the same: too large, or without that page, as on disk
        except SourceError:
            raise UpstreamError(f"{label}: the object is not a readable image") from None
