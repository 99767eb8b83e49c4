"""Open source files with Pillow safely: known formats only, a pixel limit, short errors.

Everything that touches Pillow runs inside `pillow_errors`, which turns its
exceptions into the server's errors (never a traceback or a path in the
message) and its decompression-bomb warning into `SourceTooLarge`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from PIL import Image, ImageFile, TiffImagePlugin, UnidentifiedImageError

from iiif_server import errors

# Only formats we decode in-process; others (EPS would run Ghostscript) are refused.
SUPPORTED_FORMATS = ("JPEG", "PNG", "TIFF", "JPEG2000", "WEBP", "GIF")

_ORIENTATION_TAG = 274
_IMAGE_WIDTH_TAG = 256
_IMAGE_LENGTH_TAG = 257


@contextmanager
def pillow_errors(max_pixels: int, failure: str) -> Iterator[None]:
    """Run Pillow work with `max_pixels` as the bomb limit; map what goes wrong.

    `failure` is the message of the SourceError raised for an unexpected error.
    Other warnings (corrupt EXIF, libtiff notes) are swallowed: Pillow raises
    a real error when the pixels cannot be read.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not turn grey
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except errors.ServerError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise errors.SourceTooLarge(f"the source image has more than {max_pixels} pixels") from None
    except (FileNotFoundError, NotADirectoryError):
        raise errors.NotFound("the source image file does not exist") from None
    except PermissionError:
        raise errors.SourceError("the source image file is not readable") from None
    except IsADirectoryError:
        raise errors.SourceError("the source image is not a file") from None
    except UnidentifiedImageError:
        raise errors.SourceError("the source is not an image in a supported format") from None
    except MemoryError:
        raise errors.SourceError("not enough memory to process the source image") from None
    except (OSError, SyntaxError, EOFError):
        raise errors.SourceError("the source image is corrupt or truncated") from None
    except Exception:
        raise errors.SourceError(failure) from None


def open_image(fp: IO[bytes], formats: tuple[str, ...] = SUPPORTED_FORMATS) -> ImageFile.ImageFile:
    """Identify an open file (header only); the caller keeps `fp` open while using it."""
    image = Image.open(fp, formats=formats)
    assert isinstance(image, ImageFile.ImageFile)
    return image


def check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    if size[0] * size[1] > max_pixels:
        raise errors.SourceTooLarge(f"the source image has more than {max_pixels} pixels")


def largest_page(image: ImageFile.ImageFile) -> int:
    """Index of the largest frame of a multi-page or pyramidal TIFF, else 0.

    Seeking a TIFF reads its IFDs only, no pixels. A tie keeps the first page.
    """
    if not isinstance(image, TiffImagePlugin.TiffImageFile):
        return 0
    best, best_area = 0, image.size[0] * image.size[1]
    for page in range(1, image.n_frames):
        image.seek(page)
        area = image.size[0] * image.size[1]
        if area > best_area:
            best, best_area = page, area
    image.seek(best)
    return best


def stored_size(image: ImageFile.ImageFile) -> tuple[int, int]:
    """Width and height of the current frame as stored, before any orientation.

    Recent Pillow reports (and decodes) a TIFF already oriented, so its size
    comes from the IFD instead.
    """
    if isinstance(image, TiffImagePlugin.TiffImageFile):
        width = image.tag_v2.get(_IMAGE_WIDTH_TAG)
        height = image.tag_v2.get(_IMAGE_LENGTH_TAG)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return image.size


def orientation_applied_by_pillow(image: ImageFile.ImageFile) -> bool:
    """After `load`: did Pillow turn the pixels upright itself (it drops the tag then)?"""
    return isinstance(image, TiffImagePlugin.TiffImageFile) and _ORIENTATION_TAG not in image.tag_v2


def read_orientation(image: ImageFile.ImageFile) -> int:
    """EXIF orientation (1-8) of the current frame, 1 when absent or invalid."""
    if isinstance(image, TiffImagePlugin.TiffImageFile):
        value = image.tag_v2.get(_ORIENTATION_TAG, 1)
    else:
        # The base method reads the header's EXIF only: PngImageFile.getexif
        # would decode every pixel looking for an eXIf chunk after IDAT.
        value = Image.Image.getexif(image).get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
