"""What the server knows about a source image, read from its header only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageInfo:
    """A source image as served: dimensions are after EXIF orientation.

    `page` is the 0-based frame that is served (the page asked for, else the
    largest page of a multi-page or pyramidal TIFF, else 0); `orientation` is
    the EXIF orientation (1-8) that decoding must apply; `format` is Pillow's
    name for the file format ("JPEG", "PNG", ...) or "PDF" for a PDF page
    (rendered in RGB); `mode` is Pillow's mode of that page;
    `icc_profile` says that the page embeds an ICC profile other than sRGB,
    which decoding applies (so the paths that skip decoding are not taken).
    """

    width: int
    height: int
    format: str
    mode: str
    page: int = 0
    orientation: int = 1
    icc_profile: bool = False

    @property
    def is_color(self) -> bool:
        return self.mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
