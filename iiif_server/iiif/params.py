"""The five IIIF request parameters as small immutable values.

Each of `Region`, `Size`, `Rotation`, `Quality` and `Format` has `parse()`
(syntax only: any text gives a value or `BadRequest`) and, where the image
matters, `resolve()` against the image and the server's limits. Nothing here
does I/O; `iiif.resolve` combines them into an `ImageRequest`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from ..errors import BadRequest, NotImplementedFeature

Version = Literal[2, 3]
ConfinedSize = Literal["clamp", "error"]

# Decimal numbers as the spec writes them: no sign, no exponent, no spaces.
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_INTEGER = r"\d+"
_REGION_PIXELS = re.compile(rf"({_INTEGER}),({_INTEGER}),({_INTEGER}),({_INTEGER})")
_REGION_PCT = re.compile(rf"pct:({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER})")
_SIZE = re.compile(rf"(\^)?(?:(max|full)|pct:({_NUMBER})|(!)?({_INTEGER})?,({_INTEGER})?)")
_ROTATION = re.compile(rf"(!)?({_NUMBER})")
# Integers this long are never meaningful sizes; refusing them early keeps
# arithmetic on attacker-chosen numbers cheap.
_MAX_DIGITS = 9


@dataclass(frozen=True)
class Limits:
    """Output limits from the config, advertised as maxWidth/maxHeight/maxArea.

    `confined_size` is the reading of 3.0 `!w,h` without `^` when the box is
    larger than the region: "clamp" gives the region at its own size (the
    spec's "not larger than the extracted region"), "error" a 400 (what the
    official validator's `size_noup` expects).
    """

    max_width: int
    max_height: int
    max_area: int
    allow_upscaling: bool
    confined_size: ConfinedSize = "clamp"


@dataclass(frozen=True)
class PixelBox:
    x: int
    y: int
    w: int
    h: int


def _number(text: str, what: str) -> float:
    if len(text) > 32:
        raise BadRequest(f"{what}: number too long: {text[:32]}...")
    return float(text)


def _integer(text: str, what: str) -> int:
    if len(text) > _MAX_DIGITS:
        raise BadRequest(f"{what}: number too large: {text[:16]}")
    return int(text)


@dataclass(frozen=True)
class Region:
    kind: Literal["full", "square", "pixels", "percent"]
    values: tuple[float, float, float, float] = (0, 0, 0, 0)

    @classmethod
    def parse(cls, text: str) -> Region:
        if text in ("full", "square"):
            return cls(text)  # type: ignore[arg-type]
        if match := _REGION_PIXELS.fullmatch(text):
            pixels = tuple(_integer(g, "region") for g in match.groups())
            if pixels[2] == 0 or pixels[3] == 0:
                raise BadRequest(f"region {text!r}: width and height must be above zero")
            return cls("pixels", (pixels[0], pixels[1], pixels[2], pixels[3]))
        if match := _REGION_PCT.fullmatch(text):
            x, y, w, h = (_number(g, "region") for g in match.groups())
            if w == 0 or h == 0:
                raise BadRequest(f"region {text!r}: width and height must be above zero")
            if x >= 100 or y >= 100:
                raise BadRequest(f"region {text!r}: lies outside the image")
            return cls("percent", (x, y, w, h))
        raise BadRequest(f"invalid region {text!r}")

    def resolve(self, width: int, height: int) -> PixelBox:
        """Pixels inside the image; a region reaching past an edge is cut at it."""
        if self.kind == "full":
            return PixelBox(0, 0, width, height)
        if self.kind == "square":
            side = min(width, height)
            return PixelBox((width - side) // 2, (height - side) // 2, side, side)
        x, y, w, h = self.values
        if self.kind == "percent":
            left, top = round(x * width / 100), round(y * height / 100)
            right = round(min(x + w, 100) * width / 100)
            bottom = round(min(y + h, 100) * height / 100)
            x, y, w, h = left, top, right - left, bottom - top
        if x >= width or y >= height:
            raise BadRequest("region lies outside the image")
        box = PixelBox(int(x), int(y), int(min(w, width - x)), int(min(h, height - y)))
        if box.w <= 0 or box.h <= 0:
            raise BadRequest("region is empty")
        return box


@dataclass(frozen=True)
class Size:
    kind: Literal["max", "full", "w", "h", "wh", "confined", "percent"]
    upscale: bool = False
    width: int = 0
    height: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str, version: Version) -> Size:
        match = _SIZE.fullmatch(text)
        if not match:
            raise BadRequest(f"invalid size {text!r}")
        caret, keyword, percent, bang, w_text, h_text = match.groups()
        upscale = bool(caret)
        if caret and version == 2:
            raise BadRequest(f"invalid size {text!r}: '^' is IIIF Image API 3.0 syntax")
        if keyword == "full" and version == 3:
            raise BadRequest("size 'full' is not valid in IIIF Image API 3.0: use 'max'")
        if keyword:
            return cls(keyword, upscale)  # type: ignore[arg-type]
        if percent is not None:
            value = _number(percent, "size")
            if value <= 0:
                raise BadRequest(f"size {text!r}: percentage must be above zero")
            return cls("percent", upscale, percent=value)
        w = _integer(w_text, "size") if w_text else 0
        h = _integer(h_text, "size") if h_text else 0
        if (w_text and w == 0) or (h_text and h == 0):
            raise BadRequest(f"size {text!r}: width and height must be above zero")
        if bang:
            if not (w_text and h_text):
                raise BadRequest(f"invalid size {text!r}: '!' needs both width and height")
            return cls("confined", upscale, w, h)
        if w_text and h_text:
            return cls("wh", upscale, w, h)
        if w_text:
            return cls("w", upscale, w)
        if h_text:
            return cls("h", upscale, height=h)
        raise BadRequest(f"invalid size {text!r}")

    def resolve(self, region: PixelBox, limits: Limits, version: Version) -> tuple[int, int]:
        """Output width and height for `region`, checked against the limits."""
        rw, rh = region.w, region.h
        if self.upscale and not limits.allow_upscaling:
            raise NotImplementedFeature("upscaling ('^') is disabled on this server")
        if self.kind in ("max", "full"):
            if self.kind == "full":
                w, h = rw, rh
            else:
                w, h = _fit_limits(rw, rh, limits)
        elif self.kind == "w":
            w, h = self.width, max(1, round(rh * self.width / rw))
        elif self.kind == "h":
            w, h = max(1, round(rw * self.height / rh)), self.height
        elif self.kind == "wh":
            w, h = self.width, self.height
        elif self.kind == "percent":
            w = max(1, round(rw * self.percent / 100))
            h = max(1, round(rh * self.percent / 100))
        else:
            scale = min(self.width / rw, self.height / rh)
            if version == 3 and not self.upscale and limits.confined_size == "clamp":
                scale = min(scale, 1.0)
            # Otherwise 3.0 without `^` refuses a box larger than the region in
            # both directions (the check below).
            w = min(self.width, max(1, round(rw * scale)))
            h = min(self.height, max(1, round(rh * scale)))
        if w > rw or h > rh:
            if version == 3 and not self.upscale:
                raise BadRequest(
                    f"size {w}x{h} is larger than the region {rw}x{rh}: use '^' to upscale"
                )
            if not limits.allow_upscaling:
                raise BadRequest("sizes above the full size are disabled on this server")
        if w > limits.max_width or h > limits.max_height or w * h > limits.max_area:
            raise BadRequest(
                f"size {w}x{h} exceeds the server's limits (maxWidth {limits.max_width}, "
                f"maxHeight {limits.max_height}, maxArea {limits.max_area})"
            )
        return w, h


def _fit_limits(width: int, height: int, limits: Limits) -> tuple[int, int]:
    """The largest size with this aspect ratio, at most full size, within the limits."""
    scale = min(
        1.0,
        limits.max_width / width,
        limits.max_height / height,
        math.sqrt(limits.max_area / (width * height)),
    )
    if scale >= 1.0:
        return width, height
    w = max(1, min(limits.max_width, math.floor(width * scale)))
    h = max(1, min(limits.max_height, math.floor(height * scale)))
    return w, h


@dataclass(frozen=True)
class Rotation:
    mirror: bool
    degrees: float

    @classmethod
    def parse(cls, text: str) -> Rotation:
        match = _ROTATION.fullmatch(text)
        if not match:
            raise BadRequest(f"invalid rotation {text!r}")
        degrees = _number(match.group(2), "rotation")
        if degrees > 360:
            raise BadRequest(f"rotation {text!r}: must be between 0 and 360")
        return cls(bool(match.group(1)), degrees % 360)

    def __str__(self) -> str:
        return f"{'!' if self.mirror else ''}{self.degrees:g}"


QUALITIES = ("default", "color", "gray", "bitonal")
FORMATS = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "tif": "image/tiff",
    "jp2": "image/jp2",
    "pdf": "application/pdf",
}


def parse_quality_format(text: str) -> tuple[str, str]:
    """`default.jpg` -> ("default", "jpg")."""
    quality, dot, extension = text.rpartition(".")
    if not dot:
        raise BadRequest(f"invalid quality and format {text!r}: expected quality.format")
    if quality not in QUALITIES:
        raise BadRequest(f"invalid quality {quality!r}: expected one of {', '.join(QUALITIES)}")
    if extension not in FORMATS:
        raise BadRequest(f"unsupported format {extension!r}: expected one of {', '.join(FORMATS)}")
    return quality, extension
