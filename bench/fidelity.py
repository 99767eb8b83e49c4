"""Bytes and fidelity of a session's tiles: how many bytes, how close to the source's pixels.

The reference of a tile is the exact answer: the source decoded whole by
Pillow, the region cut and resized with Lanczos. PSNR is over all the
session's pixels together (the mean squared error of every sample of every
tile), so a big tile weighs more than a small one, as it does on screen.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageStat


@dataclass(frozen=True)
class Fidelity:
    bytes: int
    psnr: float  # dB


def _reference(source: Image.Image, tile_path: str) -> Image.Image:
    region, size = tile_path.split("/")[-4:-2]
    x, y, w, h = (int(value) for value in region.split(","))
    sw, sh = (int(value) for value in size.split(","))
    return source.resize((sw, sh), Image.Resampling.LANCZOS, box=(x, y, x + w, y + h))


def fidelity(source: Image.Image, tile_paths: Sequence[str], bodies: Sequence[bytes]) -> Fidelity:
    """Total bytes of `bodies` and their PSNR against the exact tiles of `source` (RGB)."""
    squared, samples = 0.0, 0
    for path, body in zip(tile_paths, bodies, strict=True):
        tile = Image.open(io.BytesIO(body)).convert("RGB")
        exact = _reference(source, path)
        if tile.size != exact.size:
            raise RuntimeError(f"{path}: {tile.size} instead of {exact.size}")
        rms = ImageStat.Stat(ImageChops.difference(tile, exact)).rms
        count = tile.width * tile.height
        squared += sum(value * value for value in rms) * count
        samples += len(rms) * count
    mse = squared / samples
    return Fidelity(sum(map(len, bodies)), math.inf if mse == 0 else 10 * math.log10(255**2 / mse))
