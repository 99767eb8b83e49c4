"""Pages of PDF documents as images, rendered by PDFium (pypdfium2).

A page is an image of its size in points at the configured resolution
(`pdf_dpi`): a US letter page at 150 dpi is 1275x1650 pixels. The probe
reads the page's size only; rendering happens in the image workers, at the
reduced resolution a whole-page request needs or at full resolution for
tiles, and the rendered page is kept in the decoded cache like any decoded
image. A page too large for `max_source_pixels` at that resolution (a PDF
bomb) is refused before anything is rendered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import reader

FORMAT = "PDF"
_POINTS_PER_INCH = 72
_HEADER_WINDOW = 1024  # the spec lets `%PDF-` start anywhere in the first 1024 bytes


def is_pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:_HEADER_WINDOW]


def probe(path: str, page: int | None, dpi: int, max_pixels: int) -> ImageInfo:
    """The size of page `page` (1-based; None: the first) at `dpi`, or NotFound."""
    with _document(path) as document:
        count = len(document)
        index = 0 if page is None else page - 1
        if not 0 <= index < count:
            raise errors.NotFound(f"the document has no page {page} (it has {count})")
        width_pt, height_pt = _page_size(document, index)
    width = max(1, math.ceil(width_pt * dpi / _POINTS_PER_INCH))
    height = max(1, math.ceil(height_pt * dpi / _POINTS_PER_INCH))
    reader.check_pixels((width, height), max_pixels)
    return ImageInfo(width=width, height=height, format=FORMAT, mode="RGB", page=index)


def render(path: str, info: ImageInfo, scale: int, max_pixels: int) -> Image.Image:
    """The page of `info` as RGB on white, `scale` times smaller than `info`'s size."""
    reader.check_pixels((info.width, info.height), max_pixels)
    width, height = -(-info.width // scale), -(-info.height // scale)
    with _document(path) as document:
        if info.page >= len(document):
            raise errors.SourceError("the source image changed while it was being served")
        page = document[info.page]
        try:
            bitmap = pdfium.PdfBitmap.new_native(
                width, height, pdfium_c.FPDFBitmap_BGR, rev_byteorder=True
            )
            bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
            # The page stretched onto exactly this many pixels (its /Rotate applied).
            flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
            pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, flags)
            # A copy: the bitmap's buffer belongs to PDFium and goes with it.
            image: Image.Image = bitmap.to_pil().convert("RGB")
            return image
        except (pdfium.PdfiumError, ValueError, MemoryError):
            raise errors.SourceError("the PDF page cannot be rendered") from None
        finally:
            page.close()


def _page_size(document: pdfium.PdfDocument, index: int) -> tuple[float, float]:
    page = document[index]
    try:
        width, height = page.get_size()
    finally:
        page.close()
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise errors.SourceError("the PDF page has no usable size")
    return width, height


@contextmanager
def _document(path: str) -> Iterator[pdfium.PdfDocument]:
    try:
        document = pdfium.PdfDocument(path)
    except FileNotFoundError:
        raise errors.NotFound("the source image file does not exist") from None
    except pdfium.PdfiumError as error:
        message = str(error).lower()
        if "password" in message:
            raise errors.SourceError("the PDF document is encrypted") from None
        raise errors.SourceError("the PDF document is corrupt or cannot be read") from None
    try:
        yield document
    finally:
        document.close()
