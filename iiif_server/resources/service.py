"""What a resources request is, and the bytes of a transform: everything but HTTP.

`resolve` turns the path after the mount into a `Target`: a file on disk,
a file inside an archive, or a transform of an image (either of those) with
its canonical form. Whole files and entries are streamed by the handler
and never touch a pool; transforms run in the image pool, land in the
derivative cache under their canonical key and leave reduced copies behind
(`intermediate_sizes`) for the next transforms of the same image.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cachetools import LRUCache, TTLCache

from ..cache import DerivativeCache
from ..errors import NotFound, ServerError
from ..imaging.resize import Source, copy_size, make_intermediates, probe_size, resize
from ..service import TaskRunner
from .archives import ArchiveIndex, Entry
from .config import ResourcesSettings
from .matrix import MatrixParams, Transform
from .media import FORMAT_TYPES, content_type
from .paths import (
    OUTPUT_FORMATS,
    Located,
    RequestPath,
    extension,
    is_image,
    locate,
    split,
    stat_file,
)
from .paths import transcoded as transcoded_name

logger = logging.getLogger(__name__)

# Bump when the output of transforms changes, so old derivatives are not served.
KEY_VERSION = "1"
_SIZES_REMEMBERED = 4096
# A resolved path is kept this long, checked against the file's size and mtime
# on every use: a reader asks for one book's files in bursts, and resolving
# costs a system call per segment. A changed symlink takes effect within it.
_TARGET_SECONDS = 2.0
_TARGETS_REMEMBERED = 4096
# Reduced copies being made at once; beyond, a transform does not ask for more
# (a later one will), so background work never fills the pool's queues.
_MAX_BACKGROUND = 2


@dataclass(frozen=True)
class Target:
    """What a request asks for: a file, an archive entry, or a transform of an image."""

    located: Located  # the file on disk (the archive, for an entry)
    location: str  # canonical path after the mount, for Content-Location
    content_type: str
    etag: str
    entry: Entry | None = None
    transform: Transform | None = None
    source: Source | None = None  # of a transform
    source_size: tuple[int, int] = (0, 0)  # upright, of a transform's source
    identity: str = ""  # of a transform's source: changes whenever the file does
    key: str = ""  # derivative cache key of a transform

    @property
    def size(self) -> int:
        """Bytes of a file or entry (a transform's are known once rendered)."""
        return self.entry.size if self.entry is not None else self.located.size


def _etag(identity: str) -> str:
    return '"' + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32] + '"'


class ResourceService:
    def __init__(
        self,
        settings: ResourcesSettings,
        pool: TaskRunner,
        derivatives: DerivativeCache,
        max_pixels: int,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.derivatives = derivatives
        self.max_pixels = max_pixels
        self.root: str | None = None  # real path, set by start()
        self.archives = ArchiveIndex()
        self._sizes: LRUCache[str, tuple[int, int]] = LRUCache(_SIZES_REMEMBERED)
        self._targets: TTLCache[str, Target] = TTLCache(_TARGETS_REMEMBERED, _TARGET_SECONDS)
        self._background: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        root = self.settings.root
        if root is None:
            return
        if not root.is_dir():
            logger.warning("resources.root %s is not a folder: every file is a 404", root)
        self.root = os.path.realpath(root)

    async def stop(self) -> None:
        for task in list(self._background.values()):
            task.cancel()
        await asyncio.gather(*self._background.values(), return_exceptions=True)
        self.archives.close()

    def health(self) -> dict[str, Any]:
        return {
            "serving": self.root is not None and Path(self.root).is_dir(),
            "archives_open": len(self.archives),
            "archive_hits": self.archives.hits,
            "archive_misses": self.archives.misses,
            "reducing": len(self._background),
        }

    def resolve(self, raw: str) -> Target:
        """The target of the path after the mount; NotFound or BadRequest when refused."""
        if self.root is None:
            raise NotFound("no such file")
        known = self._targets.get(raw)
        if known is not None and stat_file(known.located.path) == known.located:
            return known
        target = self._resolve(raw)
        self._targets[raw] = target
        return target

    def _resolve(self, raw: str) -> Target:
        path = split(raw)
        located, entry, output = self._find(path)
        name = entry.info.filename if entry is not None else located.path
        if is_image(name) and (path.params is not None or output is not None):
            return self._plan(path, located, entry, output or _output_of(name))
        identity = entry.identity if entry is not None else located.identity
        return Target(
            located=located,
            location=path.text,
            content_type=content_type(path.name),
            etag=_etag(identity),
            entry=entry,
        )

    def open(self, target: Target) -> IO[bytes]:
        """A reader of the file or entry (not of a transform)."""
        return self._reader(target.located, target.entry)

    def _reader(self, located: Located, entry: Entry | None) -> IO[bytes]:
        if entry is not None:
            return self.archives.open(entry)
        try:
            return open(located.path, "rb")  # noqa: PTH123 (hot path; closed by the caller)
        except OSError:
            raise NotFound("no such file") from None

    def small_body(self, target: Target) -> bytes | None:
        """The whole of a small archive entry, read at once (None: stream it)."""
        return None if target.entry is None else self.archives.read_small(target.entry)

    async def render(self, target: Target) -> bytes:
        """The bytes of a transform: from the derivative cache, or made in the image pool."""
        return await self.derivatives.get_or_compute(target.key, lambda: self._compute(target))

    def _find(self, path: RequestPath) -> tuple[Located, Entry | None, str | None]:
        """The file (and entry) asked for; a missing `x.png.jpg` may be `x.png` transcoded."""
        assert self.root is not None
        max_bytes = self.settings.max_entry_bytes
        if path.inner is None:
            try:
                return self._locate(path.segments), None, None
            except NotFound:
                source = transcoded_name(path.name)
                if source is None:
                    raise
                return (
                    self._locate((*path.segments[:-1], source[0])),
                    None,
                    source[1],
                )
        archive = self._locate(path.segments)
        name = "/".join(path.inner)
        source = transcoded_name(path.name)
        if source is not None and not self.archives.has(archive, name):
            inner = "/".join((*path.inner[:-1], source[0]))
            return archive, self.archives.entry(archive, inner, max_bytes), source[1]
        return archive, self.archives.entry(archive, name, max_bytes), None

    def _locate(self, segments: tuple[str, ...]) -> Located:
        assert self.root is not None
        return locate(self.root, segments)

    def _plan(
        self, path: RequestPath, located: Located, entry: Entry | None, output: str
    ) -> Target:
        settings = self.settings
        params = MatrixParams.parse(path.params or "v=0", settings.max_dimension)
        if entry is None:
            source, identity = Source(located.path), located.identity
        else:
            source = Source(located.path, entry.info.filename, settings.max_entry_bytes)
            identity = entry.identity
        size = self._sizes.get(identity)
        if size is None:
            # The header only, right here: cheaper than a trip to a worker, once per file.
            with self._reader(located, entry) as fp:
                size = self._sizes[identity] = probe_size(fp, self.max_pixels)
        transform = params.resolve(size, settings.max_dimension, settings.jpeg_quality, output)
        location = f"params;{transform}/{path.text}"
        key = f"resources:{KEY_VERSION}:{identity}:{location}"
        return Target(
            located=located,
            location=location,
            content_type=FORMAT_TYPES[output],
            etag=_etag(key),
            entry=entry,
            transform=transform,
            source=source,
            source_size=size,
            identity=identity,
            key=key,
        )

    async def _compute(self, target: Target) -> bytes:
        assert target.transform is not None and target.source is not None
        transform = target.transform
        source, region = self.reduced_copy(target)
        args = ((transform.width, transform.height), transform.output, transform.quality)
        affinity = target.located.path
        try:
            data = await self.pool.submit(
                resize, source, region, *args, self.max_pixels, affinity=affinity
            )
        except NotFound:
            if source == target.source:
                raise
            # The reduced copy was evicted in between: the original is still there.
            data = await self.pool.submit(
                resize, target.source, transform.region, *args, self.max_pixels, affinity=affinity
            )
        self._leave_reduced_copies(target)
        return data

    def _copy_key(self, target: Target, side: int) -> str:
        return f"resources-reduced:{KEY_VERSION}:{target.identity}:{side}"

    def _wanted_sides(self, target: Target) -> list[int]:
        longest = max(target.source_size)
        return [side for side in self.settings.intermediate_sizes if side < longest]

    def reduced_copy(self, target: Target) -> tuple[Source, tuple[float, float, float, float]]:
        """The smallest reduced copy with enough pixels for the output, else the original."""
        assert target.transform is not None and target.source is not None
        transform, (width, height) = target.transform, target.source_size
        x0, y0, x1, y1 = transform.region
        need_x, need_y = transform.width / (x1 - x0), transform.height / (y1 - y0)
        for side in self._wanted_sides(target):
            copy_w, copy_h = copy_size((width, height), max(width, height), side)
            fx, fy = copy_w / width, copy_h / height
            if fx < need_x or fy < need_y:
                continue
            path = self.derivatives.file_for(self._copy_key(target, side))
            if path is not None:
                return Source(path), (x0 * fx, y0 * fy, x1 * fx, y1 * fy)
        return target.source, transform.region

    def _leave_reduced_copies(self, target: Target) -> None:
        """Start making the reduced copies of a source that lacks some, in the background."""
        sides = self._wanted_sides(target)
        identity = target.identity
        if (
            not sides
            or identity in self._background
            or len(self._background) >= _MAX_BACKGROUND
            or all(self.derivatives.file_for(self._copy_key(target, s)) for s in sides)
        ):
            return
        task = asyncio.ensure_future(self._make_copies(target, tuple(sides)))
        self._background[identity] = task
        task.add_done_callback(lambda _: self._background.pop(identity, None))

    async def _make_copies(self, target: Target, sides: tuple[int, ...]) -> None:
        assert target.source is not None
        try:
            copies = await self.pool.submit(
                make_intermediates,
                target.source,
                sides,
                self.max_pixels,
                affinity=target.located.path,
            )
        except ServerError as error:
            logger.info("reduced copies of %s not made: %s", target.located.path, error)
            return
        for side, data in copies:
            self.derivatives.put_soon(self._copy_key(target, side), data)


def _output_of(name: str) -> str:
    """The encoder for an image transformed without a second extension."""
    return OUTPUT_FORMATS.get(extension(name), "png")  # bmp and tiff become PNG
