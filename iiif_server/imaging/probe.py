"""What a source image is, from its header alone (no pixel is decoded).

`probe` reads a local file. `probe_ranges` reads the same from a few byte ranges of
a file that is elsewhere (an object in a store): when the header reaches past the
ranges given, it answers which bytes it needs instead, and is asked again with them.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import icc, pdf, reader

DEFAULT_PDF_DPI = 150


@dataclass(frozen=True)
class MoreBytes:
    """The probe read bytes [start, end) it was not given: fetch them and probe again.

    [0, size) means that only the whole file will do (a PDF is measured from a file).
    """

    start: int
    end: int


def probe(
    path: str, max_pixels: int, page: int | None = None, pdf_dpi: int = DEFAULT_PDF_DPI
) -> ImageInfo:
    """Dimensions (after EXIF orientation), format, mode, served page and orientation.

    `page` is 1-based; None serves the first page of a PDF and the largest of
    a multi-page or pyramidal TIFF. A PDF page is measured at `pdf_dpi`.
    Raises NotFound for a missing file or page, SourceTooLarge above
    `max_pixels`, SourceError for anything that is not a readable image of a
    supported format.
    """
    with (
        reader.pillow_errors(max_pixels, "the source image header cannot be read"),
        Path(path).open("rb") as fp,
    ):
        if pdf.is_pdf(fp.read(1024)):
            return pdf.probe(path, page, pdf_dpi, max_pixels)
        fp.seek(0)
        return _describe(fp, max_pixels, page)


def probe_ranges(
    ranges: Sequence[tuple[int, bytes]], size: int, max_pixels: int, page: int | None = None
) -> ImageInfo | MoreBytes:
    """`probe` of a `size`-byte file of which only `ranges` ((offset, bytes), sorted,
    not overlapping) are known; MoreBytes when the header needs any other byte.

    A probe that touched a byte it was not given is not trusted, whatever it found
    or raised: Pillow saw a short read there, not the file.
    """
    fp = _SparseFile(ranges, size)
    try:
        with reader.pillow_errors(max_pixels, "the source image header cannot be read"):
            if pdf.is_pdf(fp.read(1024)):
                return MoreBytes(0, size)
            fp.seek(0)
            info = _describe(cast(BinaryIO, fp), max_pixels, page)  # all of a file Pillow uses
    except Exception:
        if fp.missing is None:
            raise
        return fp.missing
    return fp.missing or info


def _describe(fp: BinaryIO, max_pixels: int, page: int | None) -> ImageInfo:
    image = reader.open_image(fp)
    if page is None:
        index = reader.largest_page(image)
    else:
        index = page - 1
        count = getattr(image, "n_frames", 1)
        if not 0 <= index < count:
            raise errors.NotFound(f"the image has no page {page} (it has {count})")
        image.seek(index)
    reader.check_pixels(image.size, max_pixels)
    orientation = reader.read_orientation(image)
    width, height = reader.stored_size(image)
    if orientation >= 5:  # 5-8 turn the image by a quarter
        width, height = height, width
    return ImageInfo(
        width=width,
        height=height,
        format=image.format or "",
        mode=image.mode,
        page=index,
        orientation=orientation,
        icc_profile=icc.embedded_profile(image) is not None,
    )


class _SparseFile(io.RawIOBase):
    """A read-only file of `size` bytes of which only some ranges are present.

    A read that reaches a missing byte returns what precedes it (a short read) and
    records the first such gap in `missing`.
    """

    def __init__(self, ranges: Sequence[tuple[int, bytes]], size: int) -> None:
        super().__init__()
        self._starts = [start for start, _ in ranges]
        self._chunks = [chunk for _, chunk in ranges]
        self._size = size
        self._position = 0
        self.missing: MoreBytes | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readall(self) -> bytes:
        gap_before = self.missing
        data = super().readall()
        if gap_before is None and self.missing is not None:
            # It wanted everything to the end (a WebP is parsed whole): say so at once.
            self.missing = MoreBytes(self.missing.start, self._size)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        done = 0
        while done < wanted:
            index = bisect.bisect_right(self._starts, self._position) - 1
            offset = self._position - self._starts[index] if index >= 0 else 0
            chunk = self._chunks[index][offset : offset + wanted - done] if index >= 0 else b""
            if not chunk:
                if self.missing is None:
                    self.missing = MoreBytes(self._position, self._position + wanted - done)
                break
            buffer[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._position += len(chunk)
        return done
