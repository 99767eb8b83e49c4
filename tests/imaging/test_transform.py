"""Qualities: default keeps the source's colour-ness, color, gray, bitonal."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from .images import FIXTURE, near, quadrants, render_image, save


@pytest.fixture
def colour_png(tmp_path: Path) -> str:
    return save(quadrants(), tmp_path / "q.png")


@pytest.fixture
def gray_jpeg(tmp_path: Path) -> str:
    return save(quadrants().convert("L"), tmp_path / "gray.jpg")


def test_default_keeps_a_gray_source_gray(gray_jpeg: str, worker: None) -> None:
    assert render_image(gray_jpeg).mode == "L"
    assert render_image(gray_jpeg, fmt="jpg").mode == "L"


def test_default_keeps_a_colour_source_in_colour(colour_png: str, worker: None) -> None:
    assert render_image(colour_png).mode == "RGB"


def test_color_makes_colour_from_gray(gray_jpeg: str, worker: None) -> None:
    output = render_image(gray_jpeg, quality="color", fmt="jpg")
    assert output.mode == "RGB"


def test_gray_gives_8_bit_gray_with_the_right_luminance(colour_png: str, worker: None) -> None:
    output = render_image(colour_png, quality="gray")
    assert output.mode == "L"
    assert near(output.getpixel((100, 50)), 76, 1)  # red: 0.299 * 255
    assert near(output.getpixel((300, 50)), 150, 1)  # green: 0.587 * 255


def test_gray_keeps_alpha_where_the_format_has_it(tmp_path: Path, worker: None) -> None:
    path = save(quadrants().convert("RGBA"), tmp_path / "rgba.png")
    assert render_image(path, quality="gray", fmt="png").mode == "LA"
    assert render_image(path, quality="gray", fmt="jpg").mode == "L"


@pytest.mark.parametrize("fmt", ["png", "gif", "tif"])
def test_bitonal_has_only_black_and_white_pixels(fmt: str, worker: None) -> None:
    output = render_image(str(FIXTURE), quality="bitonal", fmt=fmt)
    colours = {colour for _, colour in output.convert("L").getcolors() or []}
    assert colours == {0, 255}


@pytest.mark.parametrize("size", [(1000, 1000), (333, 333)])
def test_bitonal_jpeg_has_no_mid_greys(size: tuple[int, int], worker: None) -> None:
    output = render_image(str(FIXTURE), size=size, quality="bitonal", fmt="jpg")
    assert output.mode == "L"
    histogram = output.histogram()
    assert sum(histogram[16:240]) == 0
    assert sum(histogram[:16]) > 0 and sum(histogram[240:]) > 0


def test_bitonal_thresholds_at_mid_gray(tmp_path: Path, worker: None) -> None:
    image = Image.new("L", (40, 10), 100)
    image.paste(160, (20, 0, 40, 10))
    output = render_image(save(image, tmp_path / "g.png"), quality="bitonal")
    assert output.getpixel((5, 5)) == 0
    assert output.getpixel((35, 5)) == 255
