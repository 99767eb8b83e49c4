"""Every kind of source decodes to the right pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .images import (
    BLUE,
    FIXTURE,
    GREEN,
    RED,
    near,
    png_rgb16,
    psnr,
    quadrants,
    render_image,
    save,
)


def test_16_bit_gray_is_scaled_to_8_bits_not_clipped(tmp_path: Path, worker: None) -> None:
    levels = [0, 4096, 16384, 32768, 49152, 65535]
    image = Image.new("I", (len(levels) * 10, 10))
    for index, level in enumerate(levels):
        image.paste(level, (index * 10, 0, index * 10 + 10, 10))
    path = save(image.convert("I;16"), tmp_path / "gray16.png")
    with Image.open(path) as written:
        assert written.mode == "I;16" and written.getpixel((25, 5)) == 16384
    output = render_image(path)
    assert output.mode == "L"
    values = [output.getpixel((index * 10 + 5, 5)) for index in range(len(levels))]
    assert all(
        near(value, round(level / 257), 1) for value, level in zip(values, levels, strict=True)
    )


def test_16_bit_rgb_is_scaled_to_8_bits(tmp_path: Path, worker: None) -> None:
    path = png_rgb16(tmp_path / "rgb16.png", 30, 20, (65535, 16384, 32768))
    assert near(render_image(path).getpixel((5, 5)), (255, 64, 128), 1)


def test_cmyk_jpeg_gives_sensible_rgb(tmp_path: Path, worker: None) -> None:
    image = Image.new("CMYK", (64, 32), (0, 255, 255, 0))  # red ink
    image.paste((0, 0, 0, 255), (32, 0, 64, 32))  # black ink
    path = save(image, tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as written:
        assert "adobe" in written.info  # Adobe CMYK JPEGs store inverted samples
    output = render_image(path, fmt="jpg")
    assert output.mode == "RGB"
    assert near(output.getpixel((8, 16)), RED, 10)
    assert near(output.getpixel((56, 16)), (0, 0, 0), 10)


def test_palette_png_keeps_its_transparency(tmp_path: Path, worker: None) -> None:
    image = quadrants(40, 20).convert("P")
    transparent_index = image.getpixel((0, 0))  # the red quadrant
    path = save(image, tmp_path / "palette.png", transparency=transparent_index)
    output = render_image(path)
    assert output.mode == "RGBA"
    clear = output.getpixel((2, 2))
    assert isinstance(clear, tuple) and clear[3] == 0
    assert output.getpixel((38, 2)) == (*GREEN, 255)
    flattened = render_image(path, fmt="jpg")
    assert near(flattened.getpixel((2, 2)), (255, 255, 255), 3)  # on white


def test_gray_with_alpha_stays_gray_with_alpha(tmp_path: Path, worker: None) -> None:
    image = Image.new("LA", (20, 10), (100, 255))
    image.paste((50, 0), (10, 0, 20, 10))
    output = render_image(save(image, tmp_path / "la.png"))
    assert output.mode == "LA"
    assert output.getpixel((5, 5)) == (100, 255)
    clear = output.getpixel((15, 5))
    assert isinstance(clear, tuple) and clear[1] == 0


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("q.jpg", {"progressive": True, "quality": 95}),
        ("q.webp", {"lossless": True}),
        ("q.gif", {}),
        ("q.jp2", {}),
        ("q.tif", {"compression": "tiff_lzw"}),
    ],
)
def test_each_source_format_decodes(
    tmp_path: Path, name: str, options: dict[str, Any], worker: None
) -> None:
    path = save(quadrants(), tmp_path / name, **options)
    output = render_image(path, (0, 0, 400, 200), (100, 50)).convert("RGB")
    assert output.size == (100, 50)
    assert near(output.getpixel((10, 10)), RED, 8)
    assert near(output.getpixel((90, 10)), GREEN, 8)
    assert near(output.getpixel((10, 40)), BLUE, 8)


def test_a_multi_page_tiff_serves_its_largest_page(tmp_path: Path, worker: None) -> None:
    pages = [Image.new("RGB", (50, 40), RED), Image.new("RGB", (200, 100), GREEN)]
    path = save(pages[0], tmp_path / "p.tif", save_all=True, append_images=pages[1:])
    output = render_image(path)
    assert output.size == (200, 100)
    assert output.getpixel((100, 50)) == GREEN


def test_a_pyramidal_tiff_serves_its_full_resolution(tmp_path: Path, worker: None) -> None:
    levels = [quadrants(400 >> level, 200 >> level) for level in range(3)]
    path = save(levels[0], tmp_path / "p.tif", save_all=True, append_images=levels[1:])
    output = render_image(path, (200, 0, 200, 100), (50, 25))
    assert output.getpixel((25, 12)) == GREEN


@pytest.mark.parametrize("resolutions", [2, 6])
def test_jpeg2000_thumbnails_decode_at_a_reduced_level(
    tmp_path: Path, resolutions: int, worker: None
) -> None:
    """Asking for more reduction than the file has still works (fewer levels)."""
    with Image.open(FIXTURE) as fixture:
        grid = fixture.convert("RGB")
    path = save(grid, tmp_path / "grid.jp2", num_resolutions=resolutions)
    output = render_image(path, size=(100, 100)).convert("RGB")
    assert output.size == (100, 100)
    assert near(output.getpixel((15, 25)), grid.getpixel((150, 250)), 5)
    region = render_image(path, (300, 400, 400, 200), (100, 50)).convert("RGB")
    exact = grid.resize((100, 50), Image.Resampling.LANCZOS, box=(300, 400, 700, 600))
    assert psnr(region, exact) > 22  # wavelet reduction rings more than LANCZOS at cell edges
