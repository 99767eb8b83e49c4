"""Load the codecs a worker will use before its first real request.

Pillow registers and initialises its plugins on first use; in a fresh worker
that made the first request after a start or a restart cost about twice the
next ones.
"""

from __future__ import annotations

import io

from PIL import Image

_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "JPEG2000")


def exercise_codecs() -> None:
    """Encode and decode a tiny image in every format the server reads or writes."""
    tiny = Image.new("RGB", (16, 16), (128, 64, 32))
    for name in _FORMATS:
        buffer = io.BytesIO()
        tiny.save(buffer, name)
        buffer.seek(0)
        with Image.open(buffer) as image:
            image.load()
