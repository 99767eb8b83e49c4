"""Regions address the upright image whatever the EXIF orientation of the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageOps

from iiif_server.imaging import orientation

from .images import exif_orientation, identical, near, noisy, quadrants, render_image, save

REGIONS = [(0, 0, 40, 30), (13, 7, 21, 50), (25, 41, 35, 19)]


def upright(stored: Image.Image, turn: int) -> Image.Image:
    """What a viewer honouring the orientation shows."""
    tagged = stored.copy()
    tagged.getexif()[274] = turn
    result = ImageOps.exif_transpose(tagged)
    assert result is not None
    return result


@pytest.mark.parametrize("turn", range(1, 9))
@pytest.mark.parametrize("region", REGIONS)
def test_to_stored_box_cuts_the_same_pixels_as_cutting_the_upright_image(
    turn: int, region: tuple[int, int, int, int]
) -> None:
    stored = noisy(60, 80)
    oriented = upright(stored, turn)
    x, y, w, h = region
    box = (x, y, x + w, y + h)
    cut_stored = stored.crop(orientation.to_stored_box(turn, box, stored.size))
    assert identical(orientation.apply(cut_stored, turn), oriented.crop(box))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("turn", range(1, 9))
def test_render_serves_the_upright_image_and_its_regions(
    tmp_path: Path, fmt: str, turn: int, worker: None
) -> None:
    stored = noisy(60, 80)
    if fmt == "TIFF":
        path = save(stored, tmp_path / "o.tif", fmt, tiffinfo={274: turn})
    else:
        path = save(stored, tmp_path / "o.png", fmt, exif=exif_orientation(turn))
    oriented = upright(stored, turn)
    assert identical(render_image(path).convert("RGB"), oriented)
    x, y, w, h = REGIONS[1]
    region = render_image(path, REGIONS[1]).convert("RGB")
    assert identical(region, oriented.crop((x, y, x + w, y + h)))


@pytest.mark.parametrize("turn", [3, 6, 8])
def test_reduced_jpeg_decoding_keeps_the_orientation(
    tmp_path: Path, turn: int, worker: None
) -> None:
    """Draft works in stored orientation: a thumbnail must still come out upright."""
    stored = quadrants(800, 400)
    path = save(stored, tmp_path / "o.jpg", exif=exif_orientation(turn), quality=95)
    oriented = upright(stored, turn)
    size = (oriented.width // 8, oriented.height // 8)
    thumbnail = render_image(path, size=size).convert("RGB")
    assert thumbnail.size == size
    w, h = size
    for x, y in [(5, 5), (w - 5, 5), (5, h - 5), (w - 5, h - 5)]:
        assert near(thumbnail.getpixel((x, y)), oriented.getpixel((x * 8, y * 8)), 12)


def test_output_carries_no_exif_orientation(tmp_path: Path, worker: None) -> None:
    path = save(quadrants(), tmp_path / "o.jpg", exif=exif_orientation(6))
    for fmt in ("jpg", "png", "webp", "tif"):
        output = render_image(path, fmt=fmt)
        assert output.getexif().get(274, 1) == 1
        assert output.size == (200, 400)
