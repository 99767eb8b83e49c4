"""info.json documents for Image API 3.0 and 2.1, built from an `ImageInfo`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .image import ImageInfo
from .params import FORMATS, Limits, Version

CONTEXT = {
    3: "http://iiif.io/api/image/3/context.json",
    2: "http://iiif.io/api/image/2/context.json",
}
PROFILE = {3: "http://iiif.io/api/image/3/level2.json", 2: "http://iiif.io/api/image/2/level2.json"}
PROTOCOL = "http://iiif.io/api/image"
# Beyond level 2: what a client cannot assume without being told.
EXTRA_FEATURES_V3 = ["canonicalLinkHeader", "mirroring", "profileLinkHeader", "rotationArbitrary"]
SUPPORTS_V2 = [
    "baseUriRedirect", "canonicalLinkHeader", "cors", "jsonldMediaType", "mirroring",
    "profileLinkHeader", "regionByPct", "regionByPx", "regionSquare", "rotationArbitrary",
    "rotationBy90s", "sizeByConfinedWh", "sizeByDistortedWh", "sizeByH", "sizeByPct",
    "sizeByW", "sizeByWh",
]  # fmt: skip


@dataclass(frozen=True)
class InfoOptions:
    """Server-wide and per-type settings that shape an info.json."""

    limits: Limits
    tile_size: int
    min_sizes_size: int
    rights: str | None = None
    attribution: str | None = None
    logo: str | None = None


def scale_factors(width: int, height: int, tile_size: int) -> list[int]:
    """Powers of two until the whole image fits in one tile."""
    factors = [1]
    while math.ceil(width / factors[-1]) > tile_size or math.ceil(height / factors[-1]) > tile_size:
        factors.append(factors[-1] * 2)
    return factors


def sizes(info: ImageInfo, options: InfoOptions) -> list[dict[str, int]]:
    """Halvings of the full image, smallest first, down to `min_sizes_size`, within the limits."""
    limits = options.limits
    found: list[dict[str, int]] = []
    factor = 1
    while True:
        w, h = math.ceil(info.width / factor), math.ceil(info.height / factor)
        if factor > 1 and max(w, h) < options.min_sizes_size:
            break
        if w <= limits.max_width and h <= limits.max_height and w * h <= limits.max_area:
            found.append({"width": w, "height": h})
        if w == 1 and h == 1:
            break
        factor *= 2
    return found[::-1]


def _tiles(info: ImageInfo, options: InfoOptions) -> list[dict[str, Any]]:
    size = options.tile_size
    return [
        {
            "width": size,
            "height": size,
            "scaleFactors": scale_factors(info.width, info.height, size),
        }
    ]


def info_v3(image_id: str, info: ImageInfo, options: InfoOptions) -> dict[str, Any]:
    limits = options.limits
    document: dict[str, Any] = {
        "@context": CONTEXT[3],
        "id": image_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": "level2",
        "width": info.width,
        "height": info.height,
        "maxWidth": limits.max_width,
        "maxHeight": limits.max_height,
        "maxArea": limits.max_area,
        "sizes": sizes(info, options),
        "tiles": _tiles(info, options),
        "preferredFormats": ["jpg"],
        "extraFormats": [f for f in FORMATS if f not in ("jpg", "png")],
        # color and gray are not in the 3.0 level2 profile document.
        "extraQualities": ["color", "gray", "bitonal"],
        "extraFeatures": EXTRA_FEATURES_V3 + (["sizeUpscaling"] if limits.allow_upscaling else []),
    }
    if options.rights:
        document["rights"] = options.rights
    return document


def info_v2(image_id: str, info: ImageInfo, options: InfoOptions) -> dict[str, Any]:
    limits = options.limits
    supports = SUPPORTS_V2 + (["sizeAboveFull"] if limits.allow_upscaling else [])
    document: dict[str, Any] = {
        "@context": CONTEXT[2],
        "@id": image_id,
        "protocol": PROTOCOL,
        "width": info.width,
        "height": info.height,
        "profile": [
            PROFILE[2],
            {
                "formats": list(FORMATS),
                "qualities": ["default", "color", "gray", "bitonal"],
                "supports": sorted(supports),
                "maxWidth": limits.max_width,
                "maxHeight": limits.max_height,
                "maxArea": limits.max_area,
            },
        ],
        "sizes": sizes(info, options),
        "tiles": _tiles(info, options),
    }
    if options.rights:
        document["license"] = options.rights
    if options.attribution:
        document["attribution"] = options.attribution
    if options.logo:
        document["logo"] = options.logo
    return document


def info_document(
    version: Version, image_id: str, info: ImageInfo, options: InfoOptions
) -> dict[str, Any]:
    return (info_v3 if version == 3 else info_v2)(image_id, info, options)
