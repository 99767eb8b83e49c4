"""Pages of PDFs (rendered by PDFium) and of multi-page TIFFs as images."""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import pdf
from iiif_server.imaging.probe import probe
from iiif_server.imaging.render import EncodeOptions, render

from .documents import PAGE_COLOURS, huge_pdf, pdf_pages, tiff_pages
from .images import MAX_PIXELS, near, request


def colour_of(data: bytes) -> tuple[int, ...]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    value = image.getpixel((image.width // 2, image.height // 2))
    assert isinstance(value, tuple)
    return value


def test_a_pdf_page_measures_its_points_at_the_resolution(tmp_path: Path) -> None:
    path = str(pdf_pages(tmp_path / "book.pdf"))
    assert (probe(path, MAX_PIXELS).width, probe(path, MAX_PIXELS).height) == (1275, 1650)
    second = probe(path, MAX_PIXELS, page=2)
    assert (second.width, second.height, second.page, second.format) == (1650, 1275, 1, "PDF")
    at_72 = probe(path, MAX_PIXELS, page=3, pdf_dpi=72)
    assert (at_72.width, at_72.height) == (300, 200)


@pytest.mark.parametrize("page", [0, 4, 999])
def test_a_page_out_of_range_is_not_found(tmp_path: Path, page: int) -> None:
    path = str(pdf_pages(tmp_path / "book.pdf"))
    with pytest.raises(errors.NotFound, match="has 3"):
        probe(path, MAX_PIXELS, page=page)
    tiff = str(tiff_pages(tmp_path / "pages.tif"))
    with pytest.raises(errors.NotFound):
        probe(tiff, MAX_PIXELS, page=page)


def test_pages_render_with_their_own_colour_and_size(tmp_path: Path, worker: None) -> None:
    path = str(pdf_pages(tmp_path / "book.pdf"))
    for page, colour in enumerate(PAGE_COLOURS, start=1):
        info = probe(path, MAX_PIXELS, page=page)
        for ask in (request(info, fmt="png"), request(info, size=(info.width // 5, 100), fmt="png"),
                    request(info, (100, 100, 256, 256), fmt="png")):  # fmt: skip
            output = render(path, "v1", info, ask, EncodeOptions())
            assert Image.open(io.BytesIO(output)).size == (ask.width, ask.height)
            assert near(colour_of(output), colour, 4), (page, ask)


def test_a_reduced_render_has_the_reduced_size(tmp_path: Path) -> None:
    path = str(pdf_pages(tmp_path / "book.pdf"))
    info = probe(path, MAX_PIXELS, page=3)  # 625x417
    for scale in (1, 2, 4, 64):
        image = pdf.render(path, info, scale, MAX_PIXELS)
        assert image.size == (-(-625 // scale), -(-417 // scale)) and image.mode == "RGB"


def test_a_rotated_page_is_served_upright(tmp_path: Path, worker: None) -> None:
    path = tmp_path / "turned.pdf"
    document = pdfium.PdfDocument(str(pdf_pages(tmp_path / "book.pdf")))
    document[0].set_rotation(90)
    document.save(str(path))
    document.close()
    info = probe(str(path), MAX_PIXELS)
    assert (info.width, info.height) == (1650, 1275)  # a portrait page turned to landscape
    output = render(str(path), "v1", info, request(info, fmt="png"), EncodeOptions())
    assert Image.open(io.BytesIO(output)).size == (1650, 1275)


def test_a_corrupt_pdf_is_a_clear_source_error(tmp_path: Path, worker: None) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage, no xref, no trailer")
    with pytest.raises(errors.SourceError, match="PDF document is corrupt"):
        probe(str(path), MAX_PIXELS)
    info = ImageInfo(width=100, height=100, format="PDF", mode="RGB")
    with pytest.raises(errors.SourceError, match="PDF document is corrupt"):
        render(str(path), "v1", info, request(info), EncodeOptions())


def test_a_pdf_bomb_is_refused_by_the_pixel_limit(tmp_path: Path, worker: None) -> None:
    path = str(huge_pdf(tmp_path / "bomb.pdf"))  # 200 inches square: 30000 px at 150 dpi
    with pytest.raises(errors.SourceTooLarge):
        probe(path, 400_000_000)
    assert probe(path, 400_000_000, pdf_dpi=10).width == 2000  # the same page, coarser
    # A worker never renders more than the limit, whatever the info says.
    forged = ImageInfo(width=30000, height=30000, format="PDF", mode="RGB")
    with pytest.raises(errors.SourceTooLarge):
        render(path, "v1", forged, request(forged, size=(100, 100)), EncodeOptions())


def test_tiff_pages_by_number_and_the_largest_by_default(tmp_path: Path, worker: None) -> None:
    path = str(tiff_pages(tmp_path / "pages.tif"))
    assert probe(path, MAX_PIXELS).page == 1  # the largest: 600x400
    for page, colour in enumerate(PAGE_COLOURS, start=1):
        info = probe(path, MAX_PIXELS, page=page)
        assert info.page == page - 1
        output = render(path, "v1", info, request(info, fmt="png"), EncodeOptions())
        assert colour_of(output) == colour


def test_pages_of_one_file_are_decoded_apart(tmp_path: Path, worker: None) -> None:
    """One worker, one decoded cache: page 2 is never cut from page 1's decode."""
    for path in (str(pdf_pages(tmp_path / "book.pdf")), str(tiff_pages(tmp_path / "p.tif"))):
        for _ in range(2):
            for page, colour in enumerate(PAGE_COLOURS, start=1):
                info = probe(path, MAX_PIXELS, page=page)
                tile = request(info, (0, 0, 100, 100), fmt="png")
                assert near(colour_of(render(path, "v1", info, tile, EncodeOptions(), True)),
                            colour, 4)  # fmt: skip
