"""EXIF orientation: between the file's stored pixels and the image as served.

Requests address the oriented image, but decoding (and the decoded cache)
works in stored orientation, so a region is mapped back to stored
coordinates, cut there, and only the small result is turned.
"""

from __future__ import annotations

from PIL import Image

Box = tuple[int, int, int, int]

# The transpose that turns stored pixels upright, as ImageOps.exif_transpose does.
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def swaps_axes(orientation: int) -> bool:
    return orientation >= 5


def stored_size(orientation: int, oriented: tuple[int, int]) -> tuple[int, int]:
    width, height = oriented
    return (height, width) if swaps_axes(orientation) else (width, height)


def to_stored_box(orientation: int, box: Box, stored: tuple[int, int]) -> Box:
    """The stored-pixel rectangle that becomes `box` of the oriented image."""
    w, h = stored
    x0, y0, x1, y1 = box
    corners = [_to_stored_point(orientation, x, y, w, h) for x, y in ((x0, y0), (x1, y1))]
    xs = sorted(x for x, _ in corners)
    ys = sorted(y for _, y in corners)
    return xs[0], ys[0], xs[1], ys[1]


def _to_stored_point(orientation: int, x: int, y: int, w: int, h: int) -> tuple[int, int]:
    """Inverse of the transpose, on continuous pixel-edge coordinates."""
    return {
        1: (x, y),
        2: (w - x, y),
        3: (w - x, h - y),
        4: (x, h - y),
        5: (y, x),
        6: (y, h - x),
        7: (w - y, h - x),
        8: (w - y, x),
    }[orientation]


def apply(image: Image.Image, orientation: int) -> Image.Image:
    """Turn stored pixels upright."""
    transpose = _TRANSPOSE.get(orientation)
    return image if transpose is None else image.transpose(transpose)
