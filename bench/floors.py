"""Reference floors measured in the same run: what a plain Pillow program or bare Tornado does."""

from __future__ import annotations

import io
import sys

from PIL import Image

JPEG_QUALITY = 90


def _parse_tile(tile: str) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    region, size = tile.split("/")[:2]
    x, y, w, h = (int(v) for v in region.split(","))
    sw, sh = (int(v) for v in size.split(","))
    return (x, y, x + w, y + h), (sw, sh)


def naive_tile(path: str, tile: str) -> bytes:
    """Open, decode everything, crop, resize, encode: no reuse, no reduced decoding."""
    box, size = _parse_tile(tile)
    with Image.open(path) as image:
        image.load()
        out = image.crop(box).resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def draft_thumbnail(path: str, box: int) -> bytes:
    """The cheapest correct thumbnail Pillow can make: DCT-scaled decode, then Lanczos."""
    with Image.open(path) as image:
        scale = min(box / image.width, box / image.height)
        size = (round(image.width * scale), round(image.height * scale))
        image.draft("RGB", size)
        out = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def bare_tornado_main(body_path: str, port: int, content_type: str) -> None:
    """`python bench/floors.py FILE PORT TYPE`: one Tornado handler answering FILE from memory."""
    import asyncio
    import logging

    import tornado.web

    body = open(body_path, "rb").read()  # noqa: PTH123, SIM115

    class Bytes(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", content_type)
            self.write(body)

    async def serve() -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        tornado.web.Application([(r"/.*", Bytes)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    bare_tornado_main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
