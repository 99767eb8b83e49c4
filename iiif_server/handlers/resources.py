"""The resources API: book files, files inside ePubs and resized images, with ranges.

HTTP only: the service says what a path is; this module sends the headers,
decides 304s before any work, applies `Range`/`If-Range` and streams the
body in chunks, waiting for each to reach the socket before reading the
next, so a slow client holds one chunk of memory, not the file.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from typing import IO, Any
from urllib.parse import quote

from tornado.iostream import StreamClosedError

from ..errors import SourceError
from ..resources import ranges
from ..resources.service import ResourceService, Target
from .base import BaseHandler

logger = logging.getLogger(__name__)

CHUNK = 128 * 1024
# Characters of a path kept as they are in Content-Location (matrix parameters among them).
_LOCATION_SAFE = "/;=:!,@$&+~*'()"


class ResourceHandler(BaseHandler):
    def initialize(self, service: ResourceService) -> None:
        self.service = service
        self.settings_ = service.settings

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header(
            "Access-Control-Expose-Headers",
            "ETag, Content-Location, Content-Range, Content-Length, Accept-Ranges, Retry-After",
        )
        self.set_header("X-Content-Type-Options", "nosniff")

    async def get(self, raw: str | None) -> None:
        target = self.service.resolve(raw or "")
        modified = datetime.fromtimestamp(target.located.mtime_ns // 1_000_000_000, UTC)
        self._set_headers(target, modified)
        if self.not_modified(target.etag, modified):
            self.set_status(304)
            self.clear_header("Content-Type")
            return
        if target.transform is not None:
            body: bytes | None = await self.service.render(target)
        else:
            body = self.service.small_body(target)
        total = target.size if body is None else len(body)
        chosen = ranges.parse(self.request.headers.get("Range"), total)
        if chosen is not None and not ranges.if_range_allows(
            self.request.headers.get("If-Range"), target.etag, int(modified.timestamp())
        ):
            chosen = None
        if chosen is ranges.UNSATISFIABLE:
            self.set_status(416)
            self.set_header("Content-Range", f"bytes */{total}")
            self.clear_header("Content-Type")
            self.set_header("Content-Length", "0")
            return
        if not isinstance(chosen, list):
            await self._send(target, body, [ranges.ByteRange(0, total - 1)] if total else [])
            return
        self.set_status(206)
        if len(chosen) == 1:
            self.set_header("Content-Range", chosen[0].content_range(total))
            await self._send(target, body, chosen)
            return
        parts = ranges.Multipart.build(chosen, target.content_type, total)
        self.set_header("Content-Type", parts.content_type)
        await self._send(target, body, chosen, parts)

    head = get

    def _set_headers(self, target: Target, modified: datetime) -> None:
        max_age = self.settings_.max_age
        self.set_header("Content-Type", target.content_type)
        self.set_header("Cache-Control", f"public, max-age={max_age}")
        self.set_header("Expires", _http_date(int(time.time()) + max_age))
        self.set_header("Last-Modified", _http_date(int(modified.timestamp())))
        self.set_header("ETag", target.etag)
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Location", _quoted(f"{self.settings_.prefix}/{target.location}"))

    async def _send(
        self,
        target: Target,
        body: bytes | None,
        parts: list[ranges.ByteRange],
        multipart: ranges.Multipart | None = None,
    ) -> None:
        length = multipart.length if multipart else sum(part.length for part in parts)
        self.set_header("Content-Length", str(length))
        if self.request.method == "HEAD" or not parts:
            return
        if multipart is None and length <= CHUNK:
            # One small piece (a chapter, a cover): read at once, written with the headers.
            self.write(self._small_piece(target, body, parts[0]))
            return
        if body is not None:
            # A transform or a small entry, already in memory: no file to read.
            view = memoryview(body)
            await self._write_parts((_slices(view, part) for part in parts), multipart)
            return
        with self.service.open(target) as reader:
            try:
                await self._write_parts((_read(reader, part) for part in parts), multipart)
            except (zipfile.BadZipFile, OSError, EOFError, SourceError) as error:
                # Headers are out: all that can be done is to cut the connection short.
                logger.warning("%s: reading failed mid-body: %s", self.request.path, error)
                connection: Any = self.request.connection
                connection.close()

    def _small_piece(self, target: Target, body: bytes | None, part: ranges.ByteRange) -> bytes:
        if body is not None:
            return body if part.length == len(body) else body[part.start : part.end + 1]
        with self.service.open(target) as reader:
            reader.seek(part.start)
            data = reader.read(part.length)
        if len(data) != part.length:
            raise SourceError("the file is shorter than it was")
        return data

    async def _write_parts(
        self, parts: Iterator[Iterator[bytes]], multipart: ranges.Multipart | None
    ) -> None:
        buffered = 0
        try:
            for index, chunks in enumerate(parts):
                if multipart is not None:
                    self.write(multipart.heads[index])
                for chunk in chunks:
                    self.write(chunk)
                    buffered += len(chunk)
                    if buffered >= CHUNK:  # wait until the socket took it, then read on
                        await self.flush()
                        buffered = 0
            if multipart is not None:
                self.write(multipart.tail)
        except StreamClosedError:
            return  # the client went away; a resumed download will ask for the rest


@functools.lru_cache(maxsize=4096)
def _quoted(location: str) -> str:
    return quote(location, safe=_LOCATION_SAFE)


@functools.lru_cache(maxsize=256)
def _http_date(seconds: int) -> str:
    # Most requests fall in the same second as the one before: formatting is not free.
    return formatdate(seconds, usegmt=True)


def _slices(body: memoryview, part: ranges.ByteRange) -> Iterator[bytes]:
    for start in range(part.start, part.end + 1, CHUNK):
        yield bytes(body[start : min(start + CHUNK, part.end + 1)])


def _read(reader: IO[bytes], part: ranges.ByteRange) -> Iterator[bytes]:
    """The bytes of `part`, in chunks; a file that shrank underneath is an error."""
    reader.seek(part.start)
    left = part.length
    while left > 0:
        chunk = reader.read(min(CHUNK, left))
        if not chunk:
            raise SourceError("the file is shorter than it was")
        left -= len(chunk)
        yield chunk


def routes(service: ResourceService) -> list[tuple[str, Any, dict[str, Any]]]:
    prefix = service.settings.prefix
    return [(re.escape(prefix) + r"/(.*)", ResourceHandler, {"service": service})]
