"""Deterministic photo-like test JPEGs: noise texture, gradients, shapes and text."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    rng = random.Random(seed)
    # Smooth colour gradients: a small random field scaled up bicubically.
    field = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    image = field.resize((width, height), Image.Resampling.BICUBIC)
    # Grain: fine noise at half resolution, softened, blended in.
    small = (width // 2, height // 2)
    noise = Image.frombytes("L", small, rng.randbytes(small[0] * small[1]))
    noise = noise.filter(ImageFilter.GaussianBlur(0.6)).resize((width, height)).convert("RGB")
    image = Image.blend(image, noise, 0.3)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 40, width // 6), rng.randrange(height // 40, height // 6)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice((draw.ellipse, draw.rectangle))
        shape((x, y, x + w, y + h), fill=colour, outline=(0, 0, 0), width=3)
    font = ImageFont.load_default(size=max(12, height // 40))
    for line in range(30):
        x, y = rng.randrange(width - width // 3), rng.randrange(height)
        draw.text((x, y), f"Folio {seed}.{line} lorem ipsum dolor sit amet", fill=(10, 10, 10),
                  font=font)  # fmt: skip
    return image


def ensure_jpeg(folder: Path, name: str, size: tuple[int, int], seed: int) -> Path:
    """`folder/name.jpg`, baseline JPEG q90, made once and reused across runs."""
    path = folder / f"{name}.jpg"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        photo_like(*size, seed).save(temporary, "JPEG", quality=90)
        temporary.replace(path)
    return path
