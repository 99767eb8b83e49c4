"""JPEG outputs made without decoding: the source itself, or jpegtran's lossless changes.

A whole JPEG at its full size needs no re-encoding at all (no generation
loss, no CPU); quarter turns and mirroring are done on the DCT blocks by
jpegtran (libjpeg-turbo) when the image is made of whole blocks, which keeps
every pixel exact. Gray drops the chroma components and keeps luma as it is
(JPEG luma is the ITU-R 601 luma that gray means).
"""

from __future__ import annotations

from pathlib import Path

import jpegtran
import jpegtran.lib
from PIL import Image, JpegImagePlugin

from iiif_server.errors import SourceError
from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.request import ImageRequest
from iiif_server.imaging import turbojpeg

# JpegImagePlugin.get_sampling(): 4:4:4, 4:2:2, 4:2:0 -> the block (MCU) size in pixels.
_MCU = {0: (8, 8), 1: (16, 8), 2: (16, 16)}


def lossless_jpeg(path: str, info: ImageInfo, request: ImageRequest) -> bytes | None:
    """The output bytes when `request` is the whole JPEG, possibly turned; else None."""
    natural = "color" if info.is_color else "gray"
    to_gray = info.is_color and request.quality == "gray"
    whole = (request.region_x, request.region_y, request.region_w, request.region_h) == (
        0, 0, info.width, info.height,
    )  # fmt: skip
    if not (
        info.format == "JPEG"
        and info.mode in ("RGB", "L")
        and not info.icc_profile  # its pixels must be converted: no lossless path
        and info.orientation == 1
        and request.format == "jpg"
        and request.quality in (natural, "gray")
        and whole
        and (request.width, request.height) == (info.width, info.height)
        and request.rotation in (0, 90, 180, 270)
    ):
        return None
    turned = request.rotation != 0 or request.mirror
    source = Path(path).read_bytes()
    if not source.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None  # truncated: no end-of-image marker; decoding reports it properly
    if not turned and not to_gray:
        return source
    if turned and not _whole_blocks(path, info):
        return None  # jpegtran would move or trim the partial edge blocks
    if to_gray and not _plain_ycbcr(source, path):
        return None
    try:
        if to_gray:
            source = bytes(jpegtran.lib.Transformation(source).grayscale())
        image = jpegtran.JPEGImage(blob=source)
        if request.mirror:
            image = image.flip("horizontal")
        if request.rotation:
            image = image.rotate(int(request.rotation))
        data: bytes = image.as_blob()
    except Exception as error:  # jpegtran raises plain Exceptions
        raise SourceError("the JPEG source cannot be transformed") from error
    return data


def _plain_ycbcr(data: bytes, path: str) -> bool:
    """Luma is the first component, and no RGB profile would be copied onto a gray image."""
    try:
        if turbojpeg.read_header(data).planes != 3:
            return False
    except turbojpeg.TurboJpegError:
        return False  # RGB-coded (Adobe transform 0), CMYK, or no library to tell
    with Image.open(path) as image:
        return "icc_profile" not in image.info


def _whole_blocks(path: str, info: ImageInfo) -> bool:
    with Image.open(path) as image:
        if not isinstance(image, JpegImagePlugin.JpegImageFile):
            return False
        block = (8, 8) if info.mode == "L" else _MCU.get(JpegImagePlugin.get_sampling(image))
    return block is not None and info.width % block[0] == 0 and info.height % block[1] == 0
