"""Multi-page test sources made by the tests: PDFs (by Pillow) and TIFFs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

# One colour a page, so a page is told by its colour; sizes differ too.
PAGE_COLOURS = [(200, 30, 30), (30, 160, 40), (30, 40, 200)]
PAGE_SIZES_PT = [(612, 792), (792, 612), (300, 200)]  # letter, landscape letter, a card


def pdf_pages(path: Path) -> Path:
    """A 3-page PDF; page n measures PAGE_SIZES_PT[n - 1] points."""
    # Pillow writes each image as a page of its size in pixels at `resolution` dpi:
    # at 72 dpi one pixel is one point.
    pages = [Image.new("RGB", size, colour) for size, colour in
             zip(PAGE_SIZES_PT, PAGE_COLOURS, strict=True)]  # fmt: skip
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    return path


def huge_pdf(path: Path, points: int = 14400) -> Path:
    """One page of `points` x `points` (200 inches square), nearly empty: a PDF bomb."""
    Image.new("1", (points // 100, points // 100), 1).save(path, "PDF", resolution=0.72)
    return path


def tiff_pages(path: Path) -> Path:
    """Three pages of different sizes and colours; the second is the largest."""
    sizes = [(300, 200), (600, 400), (150, 100)]
    pages = [Image.new("RGB", size, colour) for size, colour in
             zip(sizes, PAGE_COLOURS, strict=True)]  # fmt: skip
    pages[0].save(path, "TIFF", save_all=True, append_images=pages[1:])
    return path
