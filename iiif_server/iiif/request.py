"""A fully resolved image request: version independent and in pixels.

Both API versions parse into this one value, so spellings of the same output
(`w,` and `w,h`, `pct:` and pixels, v2 and v3) share one canonical key.
"""

from __future__ import annotations

from dataclasses import dataclass

from .image import ImageInfo
from .params import Limits, Region, Rotation, Size, Version, parse_quality_format


@dataclass(frozen=True)
class ImageRequest:
    """Region in pixels of the oriented source, output size, then mirror and rotation.

    Order of operations (both versions): region, size, mirror, rotation
    (clockwise degrees, 0 <= rotation < 360), quality, format.
    """

    region_x: int
    region_y: int
    region_w: int
    region_h: int
    width: int
    height: int
    mirror: bool
    rotation: float
    quality: str  # "default" | "color" | "gray" | "bitonal"
    format: str  # "jpg" | "png" | "webp" | "gif" | "tif" | "jp2" | "pdf"

    @property
    def canonical(self) -> str:
        """The cache key part: one string per distinct output."""
        rotation = f"{self.rotation:g}"
        return (
            f"{self.region_x},{self.region_y},{self.region_w},{self.region_h}/"
            f"{self.width},{self.height}/{'!' if self.mirror else ''}{rotation}/"
            f"{self.quality}.{self.format}"
        )


def parse_image_request(
    version: Version,
    region: str,
    size: str,
    rotation: str,
    quality_format: str,
    info: ImageInfo,
    limits: Limits,
) -> ImageRequest:
    """The URL's parameter texts -> an `ImageRequest`, or BadRequest/NotImplementedFeature.

    Syntax is checked for every part before anything is resolved, so a bad
    quality is a 400 even when the region also lies outside the image.
    """
    parsed_region = Region.parse(region)
    parsed_size = Size.parse(size, version)
    parsed_rotation = Rotation.parse(rotation)
    quality, image_format = parse_quality_format(quality_format)
    box = parsed_region.resolve(info.width, info.height)
    width, height = parsed_size.resolve(box, limits, version)
    if quality == "default":
        # The same pixels as "color" or "gray": one cache entry for both spellings.
        quality = "color" if info.is_color else "gray"
    return ImageRequest(
        box.x,
        box.y,
        box.w,
        box.h,
        width,
        height,
        parsed_rotation.mirror,
        parsed_rotation.degrees,
        quality,
        image_format,
    )


def canonical_path(version: Version, request: ImageRequest, info: ImageInfo) -> str:
    """The spec's canonical `{region}/{size}/{rotation}/{quality}.{format}` for Link headers."""
    full = (request.region_x, request.region_y, request.region_w, request.region_h) == (
        0,
        0,
        info.width,
        info.height,
    )
    region = (
        "full"
        if full
        else (f"{request.region_x},{request.region_y},{request.region_w},{request.region_h}")
    )
    same_size = (request.width, request.height) == (request.region_w, request.region_h)
    if version == 3:
        size = "max" if same_size else f"{request.width},{request.height}"
        if request.width > request.region_w or request.height > request.region_h:
            size = "^" + size
    elif same_size:
        size = "full"
    elif request.height == max(1, round(request.region_h * request.width / request.region_w)):
        size = f"{request.width},"
    else:
        size = f"{request.width},{request.height}"
    rotation = f"{'!' if request.mirror else ''}{request.rotation:g}"
    default = "color" if info.is_color else "gray"
    quality = "default" if request.quality == default else request.quality
    return f"{region}/{size}/{rotation}/{quality}.{request.format}"
