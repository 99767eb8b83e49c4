"""Replacing an image so that no stat() can tell: what only a purge can make visible."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

PAD = 4096


def write_padded(path: Path, image: Image.Image) -> None:
    """A JPEG followed by zero bytes, which decoders ignore after its end marker."""
    body = io.BytesIO()
    image.save(body, "JPEG", quality=90)
    path.write_bytes(body.getvalue() + b"\0" * PAD)


def replace_unseen(path: Path, image: Image.Image) -> None:
    """Put `image` in `path` (written by `write_padded`) with the same size and mtime."""
    before = path.stat()
    body = io.BytesIO()
    image.save(body, "JPEG", quality=90)
    data = body.getvalue()
    assert len(data) <= before.st_size, "the new image must be smaller than the padded old one"
    path.write_bytes(data + b"\0" * (before.st_size - len(data)))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
