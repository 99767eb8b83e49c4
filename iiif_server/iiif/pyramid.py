"""Every image request a viewer can make from an info.json: its tiles and its sizes."""

from __future__ import annotations

import math
from collections.abc import Iterator

from .image import ImageInfo
from .info import InfoOptions, scale_factors, sizes


def advertised_requests(info: ImageInfo, options: InfoOptions) -> Iterator[tuple[str, str]]:
    """(region, size) texts in 3.0 syntax: each tile of each scale factor, then each size.

    Tiles are spelled as OpenSeadragon asks for them (`x,y,w,h` and `sw,sh`);
    spellings of one output share a cache entry, so this warms every viewer.
    """
    tile = options.tile_size
    for factor in reversed(scale_factors(info.width, info.height, tile)):
        span = tile * factor
        for y in range(0, info.height, span):
            for x in range(0, info.width, span):
                w, h = min(span, info.width - x), min(span, info.height - y)
                yield f"{x},{y},{w},{h}", f"{math.ceil(w / factor)},{math.ceil(h / factor)}"
    for size in sizes(info, options):
        yield "full", f"{size['width']},{size['height']}"
