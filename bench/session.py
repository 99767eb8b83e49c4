"""The tile requests OpenSeadragon makes for a 1200x800 viewport zooming into an image.

OpenSeadragon draws the levels from the coarsest up to the one matching the
screen, fetching the 512 px tiles each level has under the viewport, then the
user zooms towards a point and pans a little. Tiles are v3
`x,y,w,h/sw,sh/0/default.jpg`, with the scale factors the server advertises.
"""

from __future__ import annotations

import math

TILE = 512
VIEWPORT = (1200, 800)


def scale_factors(width: int, height: int) -> list[int]:
    factors = [1]
    while math.ceil(width / factors[-1]) > TILE or math.ceil(height / factors[-1]) > TILE:
        factors.append(factors[-1] * 2)
    return factors


def _tiles_under(
    width: int, height: int, factor: int, view: tuple[float, float, float, float]
) -> list[str]:
    """Tiles of the level with `factor` that intersect `view` (x, y, w, h in full-size pixels)."""
    span = TILE * factor
    x0, y0, vw, vh = view
    first_col, last_col = max(0, int(x0 // span)), min((width - 1) // span, int((x0 + vw) // span))
    first_row, last_row = max(0, int(y0 // span)), min((height - 1) // span, int((y0 + vh) // span))
    paths = []
    for row in range(first_row, last_row + 1):
        for col in range(first_col, last_col + 1):
            x, y = col * span, row * span
            w, h = min(span, width - x), min(span, height - y)
            sw, sh = math.ceil(w / factor), math.ceil(h / factor)
            paths.append(f"{x},{y},{w},{h}/{sw},{sh}/0/default.jpg")
    return paths


def zoom_session(width: int, height: int) -> list[str]:
    """Tile paths in request order, without repeats (the browser caches what it has)."""
    factors = scale_factors(width, height)
    cx, cy = width * 0.55, height * 0.45  # the point the user zooms towards
    # Views in full-size pixels: the whole image, then zooming in by scroll steps to 1:1.
    home = max(width / VIEWPORT[0], height / VIEWPORT[1])
    views = []
    zoom = home
    while zoom > 1:
        vw, vh = VIEWPORT[0] * zoom, VIEWPORT[1] * zoom
        views.append((cx - vw / 2, cy - vh / 2, vw, vh))
        zoom /= 1.5
    # At full resolution: the view, then a pan to the right and one down.
    pans = ((0, 0), (0.6, 0), (1.2, 0), (1.2, 0.6), (0.6, 0.6), (0, 0.6))
    for fx, fy in pans:
        dx, dy = VIEWPORT[0] * fx, VIEWPORT[1] * fy
        views.append((cx - VIEWPORT[0] / 2 + dx, cy - VIEWPORT[1] / 2 + dy, *VIEWPORT))
    seen: dict[str, None] = {}
    for view in views:
        screen_scale = view[2] / VIEWPORT[0]  # full-size pixels per screen pixel
        # Every level from the coarsest down to the first at least as fine as the screen.
        for factor in reversed(factors):
            for path in _tiles_under(width, height, factor, view):
                seen.setdefault(path, None)
            if factor <= screen_scale:
                break
    return list(seen)
