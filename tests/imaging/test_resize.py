"""Resizing for the resources product: DCT-scaled decoding, orientation, archives, copies."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from iiif_server import errors
from iiif_server.imaging import resize as resizing
from iiif_server.imaging.resize import Source, make_intermediates, probe_size, resize

from .icc_profiles import delta_e, rgb_profile
from .images import BLUE, GREEN, MAX_PIXELS, RED, YELLOW, exif_orientation, quadrants, save
from .test_icc import LEAF, reference


def colour_at(data: bytes, point: tuple[int, int]) -> tuple[int, ...]:
    value = Image.open(io.BytesIO(data)).convert("RGB").getpixel(point)
    assert isinstance(value, tuple)
    return value


def close(actual: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - e) <= 30 for a, e in zip(actual, expected, strict=True))


def test_a_region_at_an_exact_size(tmp_path: Path) -> None:
    path = save(quadrants(400, 200), tmp_path / "q.png")
    data = resize(Source(path), (200, 0, 400, 200), (50, 50), "png", 85, MAX_PIXELS)
    assert Image.open(io.BytesIO(data)).size == (50, 50)
    assert close(colour_at(data, (25, 10)), GREEN) and close(colour_at(data, (25, 40)), YELLOW)


def test_jpeg_decodes_dct_scaled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(quadrants(1600, 800), tmp_path / "q.jpg", quality=95)
    decoded: list[tuple[int, int]] = []
    original = resizing._loaded

    def spy(image: Image.Image) -> Image.Image:
        decoded.append(image.size)
        return original(image)

    monkeypatch.setattr(resizing, "_loaded", spy)
    data = resize(Source(path), (0, 0, 1600, 800), (200, 100), "jpg", 85, MAX_PIXELS)
    assert decoded == [(200, 100)]  # 1/8 of the source, not the whole
    assert close(colour_at(data, (20, 80)), BLUE)


def test_orientation_is_applied(tmp_path: Path) -> None:
    # Stored sideways with orientation 6 (turn clockwise): shown as 200x400.
    stored = quadrants(400, 200).transpose(Image.Transpose.ROTATE_90)
    path = save(stored, tmp_path / "o.jpg", exif=exif_orientation(6), quality=95)
    with Path(path).open("rb") as fp:
        assert probe_size(fp, MAX_PIXELS) == (400, 200)
    data = resize(Source(path), (0, 0, 400, 200), (100, 50), "png", 85, MAX_PIXELS)
    assert close(colour_at(data, (10, 10)), RED) and close(colour_at(data, (90, 40)), YELLOW)


def test_an_image_inside_a_zip_within_its_limit(tmp_path: Path) -> None:
    archive = tmp_path / "b.epub"
    image = io.BytesIO()
    quadrants(40, 20).save(image, "PNG")
    with zipfile.ZipFile(archive, "w") as book:
        book.writestr("i/q.png", image.getvalue())
    data = resize(Source(str(archive), "i/q.png", 10**6), (0, 0, 40, 20), (4, 2), "gif", 85, 10**6)
    assert Image.open(io.BytesIO(data)).format == "GIF"
    with pytest.raises(errors.SourceError):
        resize(Source(str(archive), "i/q.png", 10), (0, 0, 40, 20), (4, 2), "png", 85, 10**6)
    with pytest.raises(errors.NotFound):
        resize(Source(str(archive), "i/x.png", 10**6), (0, 0, 40, 20), (4, 2), "png", 85, 10**6)


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    path = save(quadrants(400, 200), tmp_path / "q.png")
    with pytest.raises(errors.SourceTooLarge):
        resize(Source(path), (0, 0, 400, 200), (10, 5), "png", 85, 1000)


def test_reduced_copies_are_upright_and_below_the_source(tmp_path: Path) -> None:
    stored = quadrants(800, 400).transpose(Image.Transpose.ROTATE_90)
    path = save(stored, tmp_path / "o.jpg", exif=exif_orientation(6), quality=95)
    copies = dict(make_intermediates(Source(path), (100, 200, 800, 1000), MAX_PIXELS))
    assert sorted(copies) == [100, 200]  # none as large as the source itself
    small = Image.open(io.BytesIO(copies[100]))
    assert (small.format, small.size) == ("JPEG", (100, 50))
    assert close(colour_at(copies[100], (90, 40)), YELLOW)
    alpha = save(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), tmp_path / "a.png")
    assert (
        Image.open(io.BytesIO(make_intermediates(Source(alpha), (100,), MAX_PIXELS)[0][1])).format
        == "PNG"
    )


def test_an_embedded_profile_is_applied_as_in_the_iiif_decode(tmp_path: Path) -> None:
    profile = rgb_profile()
    expected = reference(LEAF, profile)
    assert delta_e(expected, LEAF) > 10  # the profile matters: the test can fail
    path = save(Image.new("RGB", (400, 200), LEAF), tmp_path / "adobe.png", icc_profile=profile)
    data = resize(Source(path), (0, 0, 400, 200), (40, 20), "png", 85, MAX_PIXELS)
    assert "icc_profile" not in Image.open(io.BytesIO(data)).info
    assert delta_e(colour_at(data, (20, 10)), expected) < 1
    copy = make_intermediates(Source(path), (100,), MAX_PIXELS)[0][1]
    assert delta_e(colour_at(copy, (50, 25)), expected) < 2.5  # JPEG q95
