"""The pixel steps after decoding: cut and resize, mirror and rotate, quality.

Images here are in the working modes of `decode` (L, LA, RGB, RGBA) until
`apply_quality` may make a bitonal "1".
"""

from __future__ import annotations

from PIL import Image

from iiif_server.imaging.decode import Decoded
from iiif_server.imaging.orientation import Box
from iiif_server.imaging.planes import FloatBox, Planes, cut_pixels

# Clockwise quarter turns (IIIF) as Pillow's counter-clockwise transposes.
_QUARTER_TURNS = {
    90.0: Image.Transpose.ROTATE_270,
    180.0: Image.Transpose.ROTATE_180,
    270.0: Image.Transpose.ROTATE_90,
}
_BITONAL_THRESHOLD = 128


def cut(decoded: Decoded, box: Box, size: tuple[int, int], gray: bool = False) -> Image.Image:
    """`box` (in full-resolution stored pixels) of the page, at exactly `size`.

    The box is mapped into the decoded level as floats and handed to
    `resize`, which reads only the pixels it needs: no rounding of the
    region to whole reduced pixels, and no full-size intermediate crop.
    `gray` allows an L image when the output will be gray anyway.
    """
    image = decoded.image
    if isinstance(image, Planes):
        return image.cut_image(_level_box(decoded, box), size, gray)
    return cut_pixels(image, _level_box(decoded, box), size)


def cut_planes(decoded: Decoded, box: Box, size: tuple[int, int]) -> Planes:
    """As `cut`, for a page decoded into planes, keeping the planes."""
    assert isinstance(decoded.image, Planes)
    return decoded.image.cut(_level_box(decoded, box), size)


def _level_box(decoded: Decoded, box: Box) -> FloatBox:
    scale, image = decoded.scale, decoded.image
    ox, oy = decoded.origin
    x0, y0, x1, y1 = box
    return (
        (x0 - ox) / scale,
        (y0 - oy) / scale,
        # A reduced decode may round its last pixel away; never read past the edge.
        min((x1 - ox) / scale, image.width),
        min((y1 - oy) / scale, image.height),
    )


def mirror_and_rotate(
    image: Image.Image, mirror: bool, rotation: float, transparent_corners: bool
) -> Image.Image:
    """Mirror first, then turn clockwise; quarter turns are exact transposes.

    Any other angle enlarges the canvas; the uncovered corners are transparent
    when the output format has alpha, else white.
    """
    if mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rotation == 0:
        return image
    quarter_turn = _QUARTER_TURNS.get(rotation)
    if quarter_turn is not None:
        return image.transpose(quarter_turn)
    if transparent_corners:
        image = with_alpha(image)
        fill: tuple[int, ...] = (0,) * len(image.getbands())
    else:
        fill = (255,) * len(image.getbands())
    return image.rotate(-rotation, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


def apply_quality(image: Image.Image, quality: str) -> Image.Image:
    """default keeps colour-ness and alpha; color, gray; bitonal is mode "1"."""
    alpha = has_alpha(image)
    if quality == "color" and image.mode in ("L", "LA"):
        return image.convert("RGBA" if alpha else "RGB")
    if quality == "gray" and image.mode in ("RGB", "RGBA"):
        return image.convert("LA" if alpha else "L")
    if quality == "bitonal":
        # A plain threshold, not dithering: scanned text stays crisp, and a
        # JPEG of a fine dither pattern would smear into greys.
        gray = flatten(image).convert("L")
        return gray.point(lambda value: 255 if value >= _BITONAL_THRESHOLD else 0, "1")
    return image


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("LA", "RGBA")


def with_alpha(image: Image.Image) -> Image.Image:
    if has_alpha(image):
        return image
    return image.convert("LA" if image.mode in ("1", "L") else "RGBA")


def flatten(image: Image.Image) -> Image.Image:
    """The image over a white background, alpha removed."""
    if not has_alpha(image):
        return image
    opaque_mode = image.mode[:-1]
    background = Image.new(opaque_mode, image.size, (255,) * len(opaque_mode))
    background.paste(image.convert(opaque_mode), mask=image.getchannel("A"))
    return background
