"""What a source image is, from its header alone (no pixel is decoded)."""

from __future__ import annotations

from pathlib import Path

from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import icc, reader


def probe(path: str, max_pixels: int) -> ImageInfo:
    """Dimensions (after EXIF orientation), format, mode, served page and orientation.

    Raises NotFound for a missing file, SourceTooLarge above `max_pixels`,
    SourceError for anything that is not a readable image of a supported format.
    """
    with (
        reader.pillow_errors(max_pixels, "the source image header cannot be read"),
        Path(path).open("rb") as fp,
    ):
        image = reader.open_image(fp)
        page = reader.largest_page(image)
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
            page=page,
            orientation=orientation,
            icc_profile=icc.embedded_profile(image) is not None,
        )
