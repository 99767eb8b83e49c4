"""What a source image is, from its header alone (no pixel is decoded)."""

from __future__ import annotations

from pathlib import Path

from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import icc, pdf, reader

DEFAULT_PDF_DPI = 150


def probe(
    path: str, max_pixels: int, page: int | None = None, pdf_dpi: int = DEFAULT_PDF_DPI
) -> ImageInfo:
    """Dimensions (after EXIF orientation), format, mode, served page and orientation.

    `page` is 1-based; None serves the first page of a PDF and the largest of
    a multi-page or pyramidal TIFF. A PDF page is measured at `pdf_dpi`.
    Raises NotFound for a missing file or page, SourceTooLarge above
    `max_pixels`, SourceError for anything that is not a readable image of a
    supported format.
    """
    with (
        reader.pillow_errors(max_pixels, "the source image header cannot be read"),
        Path(path).open("rb") as fp,
    ):
        if pdf.is_pdf(fp.read(1024)):
            return pdf.probe(path, page, pdf_dpi, max_pixels)
        fp.seek(0)
        image = reader.open_image(fp)
        if page is None:
            index = reader.largest_page(image)
        else:
            index = page - 1
            count = getattr(image, "n_frames", 1)
            if not 0 <= index < count:
                raise errors.NotFound(f"the image has no page {page} (it has {count})")
            image.seek(index)
        reader.check_pixels(image.size, max_pixels)
        orientation = reader.read_orientation(image)
        width, height = reader.stored_size(image)
        if orientation >= 5:  # 5-8 turn the image by a quarter
            width, height = height, width
        return ImageInfo(
            width=width,
            height=height,
            format=image.format or "",
            mode=image.mode,
            page=index,
            orientation=orientation,
            icc_profile=icc.embedded_profile(image) is not None,
        )
