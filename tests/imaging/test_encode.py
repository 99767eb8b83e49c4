"""Every output format decodes, at the requested size, without metadata."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from iiif_server.imaging.render import EncodeOptions

from .images import GREEN, RED, near, quadrants, render_bytes, render_image, save


@pytest.fixture
def source(tmp_path: Path) -> str:
    return save(quadrants(), tmp_path / "q.png")


@pytest.mark.parametrize(
    ("fmt", "format_name"),
    [
        ("jpg", "JPEG"),
        ("png", "PNG"),
        ("webp", "WEBP"),
        ("gif", "GIF"),
        ("tif", "TIFF"),
        ("jp2", "JPEG2000"),
    ],
)
def test_each_image_format_decodes_to_the_requested_size(
    source: str, fmt: str, format_name: str, worker: None
) -> None:
    output = render_image(source, (100, 0, 200, 100), (80, 40), fmt=fmt)
    assert (output.format, output.size) == (format_name, (80, 40))
    assert near(output.convert("RGB").getpixel((20, 20)), RED, 8)
    assert near(output.convert("RGB").getpixel((60, 20)), GREEN, 8)


def test_tiff_output_is_compressed(source: str, worker: None) -> None:
    output = render_image(source, fmt="tif")
    assert output.info["compression"] == "tiff_adobe_deflate"


def test_pdf_is_one_page_of_the_requested_size(source: str, worker: None) -> None:
    data = render_bytes(source, size=(80, 40), fmt="pdf")
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 1
    assert re.search(rb"/MediaBox\s*\[\s*0\s+0\s+80(\.0+)?\s+40(\.0+)?\s*\]", data)


def test_tiny_jp2_outputs_encode(source: str, worker: None) -> None:
    """OpenJPEG refuses more resolution levels than a 3-pixel side can halve."""
    assert render_image(source, size=(3, 2), fmt="jp2").size == (3, 2)


@pytest.mark.parametrize("fmt", ["png", "webp", "gif", "tif", "jp2"])
def test_alpha_survives_in_formats_that_have_it(tmp_path: Path, fmt: str, worker: None) -> None:
    image = quadrants(200, 100).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 100, 50))
    output = render_image(save(image, tmp_path / "rgba.png"), fmt=fmt).convert("RGBA")
    clear, opaque = output.getpixel((25, 25)), output.getpixel((175, 25))
    assert isinstance(clear, tuple) and isinstance(opaque, tuple)
    assert clear[3] == 0 and opaque[3] == 255
    assert near(opaque[:3], GREEN, 8)


def test_encode_options_are_used(source: str, worker: None) -> None:
    small = render_bytes(source, fmt="jpg", options=EncodeOptions(jpeg_quality=10))
    large = render_bytes(source, fmt="jpg", options=EncodeOptions(jpeg_quality=100))
    assert len(small) < len(large)
    lossless = render_bytes(source, fmt="jp2", options=EncodeOptions(jp2_compression_ratio=0))
    with Image.open(io.BytesIO(lossless)) as decoded:
        assert decoded.convert("RGB").tobytes() == quadrants().tobytes()


@pytest.mark.parametrize(
    "options",
    [{"jpeg_quality": 0}, {"png_compress_level": 10}, {"webp_method": 7}, {"webp_quality": -1}],
)
def test_encode_options_refuse_values_out_of_range(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EncodeOptions(**options)
