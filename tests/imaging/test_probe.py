from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging.probe import MoreBytes, probe, probe_ranges

from .images import MAX_PIXELS, exif_orientation, png_rgb16, quadrants, save


def rgb(width: int = 300, height: int = 200) -> Image.Image:
    return quadrants(width, height)


def palette_with_transparency() -> Image.Image:
    image = rgb().convert("P")
    image.info["transparency"] = 0
    return image


SOURCES: list[tuple[str, Image.Image, str, dict[str, Any], str, str]] = [
    ("baseline.jpg", rgb(), "JPEG", {}, "JPEG", "RGB"),
    ("progressive.jpg", rgb(), "JPEG", {"progressive": True}, "JPEG", "RGB"),
    ("gray.jpg", rgb().convert("L"), "JPEG", {}, "JPEG", "L"),
    ("cmyk.jpg", rgb().convert("CMYK"), "JPEG", {}, "JPEG", "CMYK"),
    ("palette.png", palette_with_transparency(), "PNG", {}, "PNG", "P"),
    ("rgba.png", rgb().convert("RGBA"), "PNG", {}, "PNG", "RGBA"),
    ("la.png", rgb().convert("LA"), "PNG", {}, "PNG", "LA"),
    ("gray16.png", rgb().convert("I").convert("I;16"), "PNG", {}, "PNG", "I;16"),
    ("plain.tif", rgb(), "TIFF", {"compression": "tiff_lzw"}, "TIFF", "RGB"),
    ("image.jp2", rgb(), "JPEG2000", {}, "JPEG2000", "RGB"),
    ("image.webp", rgb(), "WEBP", {}, "WEBP", "RGB"),
    ("image.gif", rgb(), "GIF", {}, "GIF", "P"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "image", "fmt", "options", "format_name", "mode"), SOURCES)
def test_probe_reads_size_format_and_mode_of_each_source_kind(
    tmp_path: Path,
    name: str,
    image: Image.Image,
    fmt: str,
    options: dict[str, Any],
    format_name: str,
    mode: str,
) -> None:
    path = save(image, tmp_path / name, fmt, **options)
    assert probe(path, MAX_PIXELS) == ImageInfo(300, 200, format_name, mode, page=0, orientation=1)


def test_probe_reads_a_16_bit_rgb_png(tmp_path: Path) -> None:
    info = probe(png_rgb16(tmp_path / "rgb16.png", 30, 20, (65535, 0, 32768)), MAX_PIXELS)
    assert (info.width, info.height, info.format) == (30, 20, "PNG")


@pytest.mark.parametrize(
    ("name", "fmt"), [("o.jpg", "JPEG"), ("o.webp", "WEBP"), ("o.png", "PNG"), ("o.tif", "TIFF")]
)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_probe_reports_dimensions_after_exif_orientation(
    tmp_path: Path, name: str, fmt: str, orientation: int
) -> None:
    image = rgb(300, 200)
    if fmt == "TIFF":
        path = save(image, tmp_path / name, fmt, tiffinfo={274: orientation})
    else:
        path = save(image, tmp_path / name, fmt, exif=exif_orientation(orientation))
    info = probe(path, MAX_PIXELS)
    assert info.orientation == orientation
    assert (info.width, info.height) == ((200, 300) if orientation >= 5 else (300, 200))


def test_probe_serves_the_largest_page_of_a_multi_page_tiff(tmp_path: Path) -> None:
    pages = [rgb(100, 80), rgb(640, 480), rgb(320, 240)]
    path = save(pages[0], tmp_path / "pages.tif", "TIFF", save_all=True, append_images=pages[1:])
    info = probe(path, MAX_PIXELS)
    assert (info.page, info.width, info.height) == (1, 640, 480)


def test_probe_serves_the_full_resolution_level_of_a_pyramidal_tiff(tmp_path: Path) -> None:
    levels = [rgb(1024 >> level, 768 >> level) for level in range(4)]
    path = save(
        levels[0], tmp_path / "pyramid.tif", "TIFF", save_all=True, append_images=levels[1:]
    )
    info = probe(path, MAX_PIXELS)
    assert (info.page, info.width, info.height) == (0, 1024, 768)


def test_probe_reads_the_header_only(tmp_path: Path) -> None:
    """A PNG whose pixel data is garbage still probes: no pixel is decoded."""
    path = tmp_path / "bad-pixels.png"
    data = bytearray(Path(save(rgb(), path)).read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 4 : idat + 40] = b"\xff" * 36
    path.write_bytes(bytes(data))
    assert probe(str(path), MAX_PIXELS).width == 300


@pytest.mark.parametrize("limit", [59_999, 29_999])  # Pillow warns above 1x, refuses above 2x
def test_probe_refuses_a_source_above_the_pixel_limit(tmp_path: Path, limit: int) -> None:
    path = save(rgb(300, 200), tmp_path / "big.png")
    with pytest.raises(errors.SourceTooLarge):
        probe(path, limit)
    assert probe(path, 60_000).width == 300


def test_probe_refuses_a_large_page_that_is_not_the_first(tmp_path: Path) -> None:
    pages = [rgb(10, 10), rgb(300, 200)]
    path = save(pages[0], tmp_path / "pages.tif", "TIFF", save_all=True, append_images=pages[1:])
    with pytest.raises(errors.SourceTooLarge):
        probe(path, 1000)


def test_probe_of_garbage_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"\xff\xd8\xff not really a JPEG" * 20)
    with pytest.raises(errors.SourceError) as raised:
        probe(str(path), MAX_PIXELS)
    assert str(tmp_path) not in str(raised.value)


def test_probe_of_an_unsupported_format_is_a_source_error(tmp_path: Path) -> None:
    path = save(rgb(), tmp_path / "image.bmp")
    with pytest.raises(errors.SourceError):
        probe(path, MAX_PIXELS)


def test_probe_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound):
        probe(str(tmp_path / "missing.jpg"), MAX_PIXELS)


def test_probe_of_a_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(errors.SourceError):
        probe(str(tmp_path), MAX_PIXELS)


def probe_in_pieces(data: bytes, piece: int) -> tuple[ImageInfo | MoreBytes, int]:
    """probe_ranges fed the bytes it asks for, `piece` bytes at a time; (result, reads)."""
    ranges: dict[int, bytes] = {}
    for reads in range(1, 200):
        outcome = probe_ranges(sorted(ranges.items()), len(data), MAX_PIXELS)
        if not isinstance(outcome, MoreBytes):
            return outcome, reads
        assert 0 <= outcome.start < outcome.end <= len(data)
        ranges[outcome.start] = data[outcome.start : outcome.start + piece]
    raise AssertionError("the probe never finished")


@pytest.mark.parametrize(("name", "image", "fmt", "options", "format_name", "mode"), SOURCES)
def test_probe_from_ranges_finds_what_probe_finds(
    tmp_path: Path,
    name: str,
    image: Image.Image,
    fmt: str,
    options: dict[str, Any],
    format_name: str,
    mode: str,
) -> None:
    path = save(image, tmp_path / name, fmt, **options)
    found, _ = probe_in_pieces(Path(path).read_bytes(), 64)
    assert found == probe(path, MAX_PIXELS)


def test_probe_from_ranges_asks_for_the_bytes_it_lacks(tmp_path: Path) -> None:
    data = Path(save(rgb(), tmp_path / "a.jpg", "JPEG")).read_bytes()
    outcome = probe_ranges([], len(data), MAX_PIXELS)
    assert isinstance(outcome, MoreBytes) and outcome.start == 0
    # A truncated header is never taken for the image: the gap is asked for.
    outcome = probe_ranges([(0, data[:100])], len(data), MAX_PIXELS)
    assert isinstance(outcome, MoreBytes) and outcome.start == 100


def test_a_probe_from_ranges_that_read_everything_wanted_is_trusted(tmp_path: Path) -> None:
    path = save(rgb(), tmp_path / "a.jpg", "JPEG")
    data = Path(path).read_bytes()
    assert probe_ranges([(0, data)], len(data), MAX_PIXELS) == probe(path, MAX_PIXELS)
    with pytest.raises(errors.SourceError):
        probe_ranges([(0, b"not an image at all")], 19, MAX_PIXELS)
