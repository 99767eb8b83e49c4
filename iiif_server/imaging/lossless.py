"""JPEG outputs made without decoding: the source itself, or jpegtran's lossless turns.

A whole JPEG at its full size needs no re-encoding at all (no generation
loss, no CPU); quarter turns and mirroring are done on the DCT blocks by
jpegtran (libjpeg-turbo) when the image is made of whole blocks, which keeps
every pixel exact.
"""

from __future__ import annotations

from pathlib import Path

import jpegtran
from PIL import Image, JpegImagePlugin

from iiif_server.errors import SourceError
from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.request import ImageRequest

# JpegImagePlugin.get_sampling(): 4:4:4, 4:2:2, 4:2:0 -> the block (MCU) size in pixels.
_MCU = {0: (8, 8), 1: (16, 8), 2: (16, 16)}


def lossless_jpeg(path: str, info: ImageInfo, request: ImageRequest) -> bytes | None:
    """The output bytes when `request` is the whole JPEG, possibly turned; else None."""
    natural = "color" if info.is_color else "gray"
    whole = (request.region_x, request.region_y, request.region_w, request.region_h) == (
        0, 0, info.width, info.height,
    )  # fmt: skip
    if not (
        info.format == "JPEG"
        and info.mode in ("RGB", "L")
        and info.orientation == 1
        and request.format == "jpg"
        and request.quality == natural
        and whole
        and (request.width, request.height) == (info.width, info.height)
        and request.rotation in (0, 90, 180, 270)
    ):
        return None
    if request.rotation == 0 and not request.mirror:
        source = Path(path).read_bytes()
        # A truncated file has no end-of-image marker: decoding then reports it properly.
        return source if source.rstrip(b"\x00").endswith(b"\xff\xd9") else None
    if not _whole_blocks(path, info):
        return None  # jpegtran would move or trim the partial edge blocks
    try:
        image = jpegtran.JPEGImage(path)
        if request.mirror:
            image = image.flip("horizontal")
        if request.rotation:
            image = image.rotate(int(request.rotation))
        data: bytes = image.as_blob()
    except Exception as error:  # jpegtran raises plain Exceptions
        raise SourceError("the JPEG source cannot be transformed") from error
    return data


def _whole_blocks(path: str, info: ImageInfo) -> bool:
    with Image.open(path) as image:
        if not isinstance(image, JpegImagePlugin.JpegImageFile):
            return False
        block = (8, 8) if info.mode == "L" else _MCU.get(JpegImagePlugin.get_sampling(image))
    return block is not None and info.width % block[0] == 0 and info.height % block[1] == 0
