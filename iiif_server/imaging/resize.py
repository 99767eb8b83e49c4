"""Resize, crop and transcode one image for the resources product (runs in the image pool).

A file or an entry of a zip (read whole, bounded) is opened with Pillow;
JPEGs decode DCT-scaled (`draft`) to the smallest size that still has the
pixels needed, an embedded ICC profile converts them to sRGB as in the IIIF
decode, then Lanczos resamples the region to the exact output, which is
turned upright and encoded by `encode`. Regions and sizes arrive already
resolved (upright pixels); nothing here knows about URLs.

`make_intermediates` makes the reduced copies (longest sides) that later
transforms of the same image start from.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from PIL import Image, JpegImagePlugin

from iiif_server import errors
from iiif_server.imaging import orientation, reader
from iiif_server.imaging.decode import in_srgb
from iiif_server.imaging.encode import EncodeOptions, encode

# Book images come as BMP too; it is a plain raster format, safe to decode here.
FORMATS = (*reader.SUPPORTED_FORMATS, "BMP")
# Reduced copies: near-lossless JPEG where there is no alpha, PNG otherwise.
_COPY_QUALITY = 95

Region = tuple[float, float, float, float]


@dataclass(frozen=True)
class Source:
    """A file, or the entry `member` of the zip at `path` (at most `max_bytes` decompressed)."""

    path: str
    member: str | None = None
    max_bytes: int = 0


@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    if source.member is None:
        with Path(source.path).open("rb") as fp:
            yield fp
        return
    with zipfile.ZipFile(source.path) as archive:
        try:
            info = archive.getinfo(source.member)
        except KeyError:
            raise errors.NotFound("no such file in the archive") from None
        if info.file_size > source.max_bytes:
            raise errors.SourceError("the image inside the archive is too large")
        with archive.open(info) as entry:
            yield io.BytesIO(entry.read(source.max_bytes + 1)[: source.max_bytes])


def probe_size(fp: IO[bytes], max_pixels: int) -> tuple[int, int]:
    """Width and height as shown (EXIF orientation applied), from the header alone."""
    with reader.pillow_errors(max_pixels, "the image header cannot be read"):
        image = reader.open_image(fp, FORMATS)
        reader.check_pixels(image.size, max_pixels)
        return orientation.stored_size(reader.read_orientation(image), image.size)


def resize(
    source: Source,
    region: Region,
    size: tuple[int, int],
    fmt: str,
    quality: int,
    max_pixels: int,
) -> bytes:
    """`region` (upright pixels) of the image at exactly `size`, encoded as `fmt`."""
    with reader.pillow_errors(max_pixels, "the image could not be resized"), _opened(source) as fp:
        image = reader.open_image(fp, FORMATS)
        reader.check_pixels(image.size, max_pixels)
        turn = reader.read_orientation(image)
        stored = image.size
        edges = tuple(round(v) for v in region)
        box = orientation.to_stored_box(turn, (edges[0], edges[1], edges[2], edges[3]), stored)
        out = orientation.stored_size(turn, size)
        sx, sy = _draft(image, stored, box, out)
        pixels = in_srgb(_loaded(image))
        scaled = (box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy)
        result = pixels.resize(out, Image.Resampling.LANCZOS, box=scaled)
        result = orientation.apply(result, turn)
        options = EncodeOptions(jpeg_quality=quality, webp_quality=quality)
        return encode(result, fmt, options)


def make_intermediates(
    source: Source, sizes: tuple[int, ...], max_pixels: int
) -> list[tuple[int, bytes]]:
    """Upright reduced copies whose longest side is each of `sizes` below the image's own.

    One decode at the largest size needed; each smaller copy is resampled
    from the next larger one. Returns (longest side, encoded copy) pairs.
    """
    with reader.pillow_errors(max_pixels, "the image could not be reduced"), _opened(source) as fp:
        image = reader.open_image(fp, FORMATS)
        reader.check_pixels(image.size, max_pixels)
        turn = reader.read_orientation(image)
        stored = image.size
        longest = max(stored)
        wanted = sorted((s for s in sizes if s < longest), reverse=True)
        if not wanted:
            return []
        first = copy_size(stored, longest, wanted[0])
        _draft(image, stored, (0, 0, *stored), first)
        current = orientation.apply(in_srgb(_loaded(image)), turn)
        upright = orientation.stored_size(turn, stored)
        copies = []
        for side in wanted:
            current = current.resize(copy_size(upright, longest, side), Image.Resampling.LANCZOS)
            fmt = "jpg" if current.mode in ("L", "RGB") else "png"
            copies.append((side, encode(current, fmt, EncodeOptions(jpeg_quality=_COPY_QUALITY))))
        return copies


def copy_size(size: tuple[int, int], longest: int, side: int) -> tuple[int, int]:
    """The size of the reduced copy of an image of `size` whose longest side is `side`."""
    return max(1, round(size[0] * side / longest)), max(1, round(size[1] * side / longest))


def _draft(
    image: Image.Image, stored: tuple[int, int], box: orientation.Box, out: tuple[int, int]
) -> tuple[float, float]:
    """DCT-scaled decoding of a JPEG, keeping at least `out` pixels across `box`.

    Returns the factors by which the decoded image is smaller than `stored`.
    """
    if not isinstance(image, JpegImagePlugin.JpegImageFile):
        return 1.0, 1.0
    width = math.ceil(stored[0] * out[0] / max(1, box[2] - box[0]))
    height = math.ceil(stored[1] * out[1] / max(1, box[3] - box[1]))
    image.draft(image.mode, (min(width, stored[0]), min(height, stored[1])))
    return stored[0] / image.size[0], stored[1] / image.size[1]


def _loaded(image: Image.Image) -> Image.Image:
    image.load()
    return image
