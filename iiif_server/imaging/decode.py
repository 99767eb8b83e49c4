"""Decode a source's served page, reduced while decoding where the format allows.

JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT, JPEG 2000 at any wavelet
level (`reduce`), and a PDF page is rendered by PDFium at any scale: far
cheaper than decoding every pixel. Other formats are
decoded whole; `reduce` then makes the smaller level.

At full size, a plain JPEG (8-bit YCbCr or gray, common sampling) is
decoded by libjpeg-turbo into its planes (`planes.Planes`): about half the
time and a third of the memory of Pillow's RGB. Everything else, and any
JPEG the library warns about, goes through Pillow (`Image.draft` scales).

A decoded image is in the file's stored orientation (unless the decoder
turned it itself, as Pillow does for TIFF: see `Decoded.orientation`) and in
a working mode that resizing handles well (L, LA, RGB or RGBA, 8-bit samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, Jpeg2KImagePlugin, JpegImagePlugin

from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import icc, jpeg2000, orientation, pdf, reader, spare, turbojpeg
from iiif_server.imaging.planes import Planes, from_buffers

_DCT_SCALES = 8  # libjpeg: 1/2, 1/4, 1/8
_HEADERS_ALLOWANCE = 1 << 20  # EXIF, ICC profiles and thumbnails before the pixels


@dataclass(frozen=True)
class Decoded:
    """A decoded page; pixel i covers stored pixels [i * scale, (i + 1) * scale).

    `orientation` is the EXIF orientation still to apply to these pixels:
    the source's, or 1 when the decoder already turned them upright. A
    partial decode starts at `origin` (in full-size stored pixels).
    """

    image: Image.Image | Planes
    scale: int
    orientation: int
    origin: tuple[int, int] = (0, 0)

    @property
    def nbytes(self) -> int:
        """The memory the pixels take: Pillow keeps every multi-band pixel in 4 bytes."""
        if isinstance(self.image, Planes):
            return self.image.nbytes
        mode = self.image.mode
        per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
        return self.image.width * self.image.height * per_pixel


def reduces_natively(info: ImageInfo) -> bool:
    return info.format in ("JPEG", "MPO", "JPEG2000", pdf.FORMAT)


def max_native_scale(info: ImageInfo) -> int | None:
    """The largest decode-time reduction known from the format (None: no fixed bound)."""
    return _DCT_SCALES if info.format in ("JPEG", "MPO") else None


def decode(path: str, info: ImageInfo, scale: int, max_pixels: int) -> Decoded:
    """Decode the served page at `scale` (a power of two) or the nearest finer one."""
    with (
        reader.pillow_errors(max_pixels, "the source image cannot be decoded"),
        Path(path).open("rb") as fp,
    ):
        if info.format == pdf.FORMAT:  # rendered at any scale by PDFium
            return Decoded(pdf.render(path, info, scale, max_pixels), scale, 1)
        planar = _decode_planes(fp, info, max_pixels) if scale == 1 else None
        if planar is not None:
            return planar
        fp.seek(0)
        image = reader.open_image(fp)
        if info.page:
            image.seek(info.page)
        reader.check_pixels(image.size, max_pixels)
        expected = orientation.stored_size(info.orientation, (info.width, info.height))
        if reader.stored_size(image) != expected:
            raise errors.SourceError("the source image changed while it was being served")
        actual = 1
        if scale > 1:
            if isinstance(image, JpegImagePlugin.JpegImageFile):
                actual = _draft(image, scale)
            elif isinstance(image, Jpeg2KImagePlugin.Jpeg2KImageFile):
                levels = min(scale.bit_length() - 1, jpeg2000.decomposition_levels(fp))
                image.reduce = levels
                actual = 1 << levels
        image.load()
        pending = 1 if reader.orientation_applied_by_pillow(image) else info.orientation
        return Decoded(_in_srgb(image, info), actual, pending)


def decode_planar(path: str, info: ImageInfo, scale: int, max_pixels: int) -> Decoded:
    """The served page at `scale` for JPEG tiles: a plain JPEG's planes reduced in the DCT.

    Chroma keeps the source's subsampling at the reduced size, as a 4:2:0
    JPEG tile stores it anyway. Any other source decodes as `decode` does.
    """
    if 1 < scale <= _DCT_SCALES:
        with (
            reader.pillow_errors(max_pixels, "the source image cannot be decoded"),
            Path(path).open("rb") as fp,
        ):
            planar = _decode_planes(fp, info, max_pixels, scale)
        if planar is not None:
            return planar
    return decode(path, info, scale, max_pixels)


def reduce(decoded: Decoded, factor: int) -> Decoded:
    """A level `factor` times smaller, by box averaging (fast, and exact at the edges)."""
    return Decoded(decoded.image.reduce(factor), decoded.scale * factor, decoded.orientation)


def decode_region(
    path: str, info: ImageInfo, box: tuple[int, int, int, int], max_pixels: int
) -> Decoded | None:
    """Only the pixels of stored `box` (and a few columns left of it) of a plain JPEG.

    libjpeg-turbo skips the rows above the box and decodes only the columns
    it needs below them: a 512 px tile of a 6000x4000 photo in 20-40 ms
    instead of 120 ms for the whole. None when the file is not a plain JPEG.
    """
    with (
        reader.pillow_errors(max_pixels, "the source image cannot be decoded"),
        Path(path).open("rb") as fp,
    ):
        plain = _plain_jpeg(fp, info, max_pixels)
        if plain is None:
            return None
        data, header = plain
        try:
            decoded_box, pixels = turbojpeg.decode_region(data, header, box)
        except turbojpeg.TurboJpegError:
            return None
    x0, y0, x1, y1 = decoded_box
    image = Image.frombytes("L" if header.planes == 1 else "RGB", (x1 - x0, y1 - y0), pixels)
    return Decoded(image, 1, info.orientation, (x0, y0))


def _in_srgb(image: Image.Image, info: ImageInfo) -> Image.Image:
    """The decoded page in a working mode, converted by its embedded profile if it has one."""
    return in_srgb(image) if info.icc_profile else to_working_mode(image)


def in_srgb(image: Image.Image) -> Image.Image:
    """A decoded image in a working mode, converted by its embedded profile if one applies."""
    profile = icc.embedded_profile(image)
    if profile is None:
        return to_working_mode(image)
    if image.mode == "CMYK":  # through its profile, not Pillow's naive formula
        return to_working_mode(icc.to_srgb(image, profile))
    return icc.to_srgb(to_working_mode(image), profile)


def _decode_planes(
    fp: BinaryIO, info: ImageInfo, max_pixels: int, scale: int = 1
) -> Decoded | None:
    """The planes of a plain JPEG (reduced `scale` times), or None for Pillow to decode.

    `decode` asks for full size only: libjpeg decodes the chroma of a reduced
    decode at half the luma's resolution into planes, but at full resolution
    into RGB (Pillow), which a reduced thumbnail shows.
    """
    plain = _plain_jpeg(fp, info, max_pixels)
    if plain is None:
        return None
    data, header = plain
    try:
        size, buffers = turbojpeg.decode_planes(
            data, header, spare.take if scale == 1 else None, scale
        )
    except turbojpeg.TurboJpegError:
        return None
    return Decoded(from_buffers(buffers, size, header.sampling), scale, info.orientation)


def _plain_jpeg(
    fp: BinaryIO, info: ImageInfo, max_pixels: int
) -> tuple[bytes, turbojpeg.Header] | None:
    """The file's bytes and header when libjpeg-turbo can decode it itself, else None."""
    if info.format != "JPEG" or info.page or info.icc_profile or not turbojpeg.available():
        return None  # the profile is applied by Pillow's decode (`_in_srgb`)
    stored = orientation.stored_size(info.orientation, (info.width, info.height))
    reader.check_pixels(stored, max_pixels)
    # A JPEG takes well under 4 bytes a pixel; more is trailing data not worth reading.
    most = stored[0] * stored[1] * 4 + _HEADERS_ALLOWANCE
    data = fp.read(most + 1)
    if len(data) > most:
        return None
    try:
        header = turbojpeg.read_header(data)
    except turbojpeg.TurboJpegError:
        return None
    if (header.width, header.height) != stored:
        raise errors.SourceError("the source image changed while it was being served")
    return data, header


def _draft(image: JpegImagePlugin.JpegImageFile, scale: int) -> int:
    """Ask libjpeg for 1/`scale` decoding; returns the scale it will use."""
    width, height = image.size
    drafted = image.draft(image.mode, (max(width // scale, 1), max(height // scale, 1)))
    if drafted is None:  # e.g. a multi-picture file: no draft
        return 1
    _, box = drafted
    return round(width / box[2])


def to_working_mode(image: Image.Image) -> Image.Image:
    """L, LA, RGB or RGBA with 8-bit samples, transparency as alpha, no metadata."""
    mode = image.mode
    has_transparency = "transparency" in image.info
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        result = _sixteen_to_eight(image)
    elif mode == "1":
        result = image.convert("L")
    elif mode in ("P", "PA", "RGBa", "RGBX"):
        result = image.convert("RGBA" if has_transparency or "A" in mode else "RGB")
    elif mode == "La":
        result = image.convert("LA")
    elif mode in ("L", "RGB") and has_transparency:
        result = image.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("L", "LA", "RGB", "RGBA"):
        result = image
    else:  # CMYK (Adobe-inverted ones are un-inverted by Pillow's decoder), YCbCr, LAB...
        result = image.convert("RGB")
    result.info = {}  # EXIF, ICC and the rest must not reach an output
    return result


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """Scale deep gray samples into 0-255 (Pillow's own convert would clip at 255)."""
    wide = image.convert("F" if image.mode == "F" else "I")
    factor = 255 / _white_level(wide, image.mode)
    # +0.5 rounds: point() and convert() truncate, and 65535 / 257 must give 255.
    return wide.point(lambda value: value * factor + 0.5).convert("L")


def _white_level(wide: Image.Image, mode: str) -> float:
    """The sample value that means white; only 16-bit modes say it themselves."""
    if mode.startswith("I;16"):
        return 65535
    _, extreme = wide.getextrema()
    assert isinstance(extreme, (int, float))
    if extreme <= 1:
        return 1  # floats in 0..1, or a 0/1 mask
    if extreme <= 255:
        return 255
    return max(extreme, 65535)
