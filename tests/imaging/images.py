"""Test images made with Pillow, requests, and ways to look at rendered outputs."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageStat

from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.request import ImageRequest
from iiif_server.imaging.probe import probe
from iiif_server.imaging.render import EncodeOptions, render

# The validator's grid image, shipped in the repository as the sample source.
FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "data/sources/sample/67352ccc-d1b0-11e1-89ae-279075081939.png"
)
MAX_PIXELS = 100_000_000

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)


def quadrants(width: int = 400, height: int = 200) -> Image.Image:
    """Top left red, top right green, bottom left blue, bottom right yellow."""
    image = Image.new("RGB", (width, height), RED)
    half_w, half_h = width // 2, height // 2
    image.paste(GREEN, (half_w, 0, width, half_h))
    image.paste(BLUE, (0, half_h, half_w, height))
    image.paste(YELLOW, (half_w, half_h, width, height))
    return image


def noisy(width: int, height: int) -> Image.Image:
    """Photo-like: smooth gradients under gaussian noise."""
    ramp = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40)
    smooth = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_180), noise))
    return Image.blend(smooth, Image.merge("RGB", (noise, noise, noise)), 0.2)


def exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[274] = orientation
    return exif.tobytes()


def save(image: Image.Image, path: Path, fmt: str | None = None, /, **options: Any) -> str:
    image.save(path, fmt, **options)
    return str(path)


def png_rgb16(path: Path, width: int, height: int, rgb: tuple[int, int, int]) -> str:
    """A 16-bit RGB PNG of one colour (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    row = b"\x00" + struct.pack(">HHH", *rgb) * width
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    data += chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return str(path)


def request(
    info: ImageInfo,
    region: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
    *,
    mirror: bool = False,
    rotation: float = 0.0,
    quality: str = "default",
    fmt: str = "png",
) -> ImageRequest:
    x, y, w, h = region or (0, 0, info.width, info.height)
    width, height = size or (w, h)
    return ImageRequest(x, y, w, h, width, height, mirror, rotation, quality, fmt)


def render_bytes(
    path: str,
    region: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
    *,
    identity: str = "v1",
    options: EncodeOptions | None = None,
    **params: Any,
) -> bytes:
    info = probe(path, MAX_PIXELS)
    return render(
        path, identity, info, request(info, region, size, **params), options or EncodeOptions()
    )


def render_image(
    path: str,
    region: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
    **params: Any,
) -> Image.Image:
    """Render, then decode the output with Pillow."""
    output = Image.open(io.BytesIO(render_bytes(path, region, size, **params)))
    output.load()
    return output


def near(actual: Any, expected: Any, tolerance: int = 6) -> bool:
    if isinstance(expected, int):
        return bool(abs(actual - expected) <= tolerance)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def psnr(a: Image.Image, b: Image.Image) -> float:
    rms = ImageStat.Stat(ImageChops.difference(a, b)).rms
    mse = sum(value * value for value in rms) / len(rms)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def identical(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None
