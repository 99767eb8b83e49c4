"""Matrix parameters (`params;v=0;img:w=200;img:m=crop/...`) as small immutable values.

`MatrixParams.parse` checks the text (a 400 names the key at fault);
`resolve` against the source's size gives a `Transform`: the exact output
size, the source region it shows, and a canonical `__str__` with the
defaults filled in. That string is the `Content-Location` and, with the
file's identity, the cache key; it is a fixed point: resolving the
canonical parameters again gives the same transform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadRequest

MODES = ("scale", "scale!", "crop", "stretch")
GRAVITIES = ("c", "n", "ne", "e", "se", "s", "sw", "w", "nw")
DEFAULT_MODE = "scale!"
# Outputs whose bytes depend on img:q; for others it is left at the default.
LOSSY_FORMATS = frozenset({"jpg", "webp"})
_KEYS = ("v", "img:w", "img:h", "img:m", "img:g", "img:q")
_NUMBER = re.compile(r"\d+(?:\.\d*)?")

Region = tuple[float, float, float, float]


def _number(key: str, value: str, high: int) -> int:
    # Old clients send decimals (`200.0`): truncated to an integer, as the old server did.
    if not _NUMBER.fullmatch(value):
        raise BadRequest(f"{key}: must be a whole number, got {value!r}")
    number = int(value.partition(".")[0])
    if not 1 <= number <= high:
        raise BadRequest(f"{key}: must be between 1 and {high}, got {value!r}")
    return number


@dataclass(frozen=True)
class MatrixParams:
    width: int | None = None
    height: int | None = None
    mode: str = DEFAULT_MODE
    gravity: str = "c"
    quality: int | None = None

    @classmethod
    def parse(cls, text: str, max_dimension: int) -> MatrixParams:
        """`v=0;img:w=200;...` (after `params;`). Empty items (a trailing `;`) are allowed."""
        values: dict[str, str] = {}
        for item in text.split(";"):
            if not item:
                continue
            key, equals, value = item.partition("=")
            if not equals:
                raise BadRequest(f"{key}: a parameter must be written key=value")
            if key not in _KEYS:
                if key.startswith("img:"):
                    raise BadRequest(f"{key}: unknown parameter (known: {', '.join(_KEYS)})")
                continue  # not ours: old clients may add their own
            if key in values:
                raise BadRequest(f"{key}: given twice")
            values[key] = value
        version = values.get("v")
        if version != "0":
            raise BadRequest(f"v: the API version must be 0, got {version!r}")
        mode = values.get("img:m", DEFAULT_MODE).lower()
        if mode not in MODES:
            raise BadRequest(f"img:m: must be one of {', '.join(MODES)}, got {mode!r}")
        gravity = values.get("img:g", "c").lower()
        if gravity not in GRAVITIES:
            raise BadRequest(f"img:g: must be one of {' '.join(GRAVITIES)}, got {gravity!r}")
        width, height, quality = (
            None if values.get(key) is None else _number(key, values[key], high)
            for key, high in (("img:w", max_dimension), ("img:h", max_dimension), ("img:q", 100))
        )
        return cls(width, height, mode, gravity, quality)

    def resolve(
        self, source: tuple[int, int], max_dimension: int, default_quality: int, output: str
    ) -> Transform:
        """The transform of an image of `source` (width, height, upright) into `output`."""
        box = _box(self.width, self.height, source, max_dimension)
        region: Region = (0.0, 0.0, float(source[0]), float(source[1]))
        if self.mode in ("scale", "scale!"):
            size = _fit(box, source)
            if self.mode == "scale" and (size[0] > source[0] or size[1] > source[1]):
                size = source  # never enlarges
        elif self.mode == "crop":
            size, region = box, _crop_region(box, source, self.gravity)
        else:
            size = box
        quality = self.quality if self.quality is not None else default_quality
        return Transform(
            width=size[0],
            height=size[1],
            mode=self.mode,
            gravity=self.gravity if self.mode == "crop" else "c",
            quality=quality if output in LOSSY_FORMATS else default_quality,
            output=output,
            region=region,
        )


@dataclass(frozen=True)
class Transform:
    """A resolved transform: exact output size, the source region shown, encoder settings."""

    width: int
    height: int
    mode: str
    gravity: str
    quality: int
    output: str  # encoder name: jpg png gif webp
    region: Region  # in upright source pixels

    def __str__(self) -> str:
        """Parameters sorted by key, defaults filled in: the old server's canonical form."""
        gravity = f"img:g={self.gravity};" if self.mode == "crop" else ""
        return (
            f"{gravity}img:h={self.height};img:m={self.mode};img:q={self.quality};"
            f"img:w={self.width};v=0"
        )


def _box(
    width: int | None, height: int | None, source: tuple[int, int], max_dimension: int
) -> tuple[int, int]:
    """The output box: a missing side follows the aspect ratio (no side: the source's size)."""
    sw, sh = source
    if width is None and height is None:
        if sw >= sh:
            width = min(sw, max_dimension)
        else:
            height = min(sh, max_dimension)
    if height is None:
        assert width is not None
        height = _clamp(round(sh * width / sw), max_dimension)
    elif width is None:
        width = _clamp(round(sw * height / sh), max_dimension)
    return width, height


def _clamp(value: int, high: int) -> int:
    return max(1, min(high, value))


def _fit(box: tuple[int, int], source: tuple[int, int]) -> tuple[int, int]:
    """The largest size of the source's aspect inside `box`, one side touching it.

    Of the two candidates (full width, full height) the larger one that fits
    wins; so a box equal to an earlier output gives that output again.
    """
    (bw, bh), (sw, sh) = box, source
    candidates = [(bw, max(1, round(sh * bw / sw))), (max(1, round(sw * bh / sh)), bh)]
    fitting = [(w, h) for w, h in candidates if w <= bw and h <= bh]
    return max(fitting, key=lambda size: size[0] * size[1])


def _crop_region(box: tuple[int, int], source: tuple[int, int], gravity: str) -> Region:
    """The part of the source that, scaled, fills `box` exactly; the rest is cut by gravity."""
    (bw, bh), (sw, sh) = box, source
    scale = max(bw / sw, bh / sh)
    rw, rh = min(sw, bw / scale), min(sh, bh / scale)
    x = 0.0 if "w" in gravity else sw - rw if "e" in gravity else (sw - rw) / 2
    y = 0.0 if "n" in gravity else sh - rh if "s" in gravity else (sh - rh) / 2
    return (x, y, x + rw, y + rh)
