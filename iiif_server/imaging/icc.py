"""Embedded ICC profiles: a source is converted to sRGB once, as it is decoded.

Outputs carry no profile, so viewers show them as sRGB. A source in Adobe
RGB, ProPhoto, a gray gamma or a press CMYK would then show wrong colours
unless its pixels are converted by its own profile (LittleCMS, through
Pillow's `ImageCms`). The conversion happens in the decode, so every tile,
size and format made from the decoded image agrees; the paths that skip
Pillow's decode (planar JPEG, region decoding, lossless JPEG) are taken only
for sources without such a profile.

A profile that says it is sRGB, cannot be read, or does not match the
pixels' colour space is ignored, as browsers do.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageCms

# Pillow modes by the profile colour space that can describe them.
_MODES_OF_SPACE = {
    "RGB": frozenset({"RGB", "RGBA", "RGBX", "RGBa", "P", "PA"}),
    "GRAY": frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}),
    "CMYK": frozenset({"CMYK"}),
}
# Tiny sRGB profiles used by web tools, whose descriptions do not say "sRGB".
_SRGB_DESCRIPTIONS = frozenset({"c2", "c2ci"})
_PROFILES_KEPT = 16


def embedded_profile(image: Image.Image) -> bytes | None:
    """The image's ICC profile when decoding must apply it, else None."""
    data = image.info.get("icc_profile")
    if not isinstance(data, bytes) or not data:
        return None
    space = _colour_space(data)
    if space is None or image.mode not in _MODES_OF_SPACE.get(space, ()):
        return None
    return data


def to_srgb(image: Image.Image, profile: bytes) -> Image.Image:
    """`image` (CMYK, or a working mode: L, LA, RGB, RGBA) converted from `profile` to sRGB.

    CMYK becomes RGB; gray stays gray (a gray profile is a tone curve, applied
    as a lookup table); alpha is kept as it is. RGB is converted in place.
    """
    if image.mode in ("L", "LA"):
        curve = _gray_curve(profile)
        return image.point(curve + list(range(256)) if image.mode == "LA" else curve)
    if image.mode == "CMYK":
        converted = ImageCms.applyTransform(image, _transform(profile, "CMYK", "RGB"))
        assert converted is not None  # None only in place
        return converted
    if image.mode in ("RGB", "RGBA"):
        # In place: a quarter faster, and no second copy of a large image.
        ImageCms.applyTransform(image, _transform(profile, image.mode, image.mode), inPlace=True)
    return image


@lru_cache(maxsize=_PROFILES_KEPT)
def _colour_space(data: bytes) -> str | None:
    """The colour space (RGB, GRAY, CMYK) of a profile to apply; None: sRGB or unreadable."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        description = ImageCms.getProfileDescription(profile).strip().lower()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    if "srgb" in description or description in _SRGB_DESCRIPTIONS:
        return None
    space = profile.profile.xcolor_space.strip()
    return space if space in _MODES_OF_SPACE else None


@lru_cache(maxsize=_PROFILES_KEPT)
def _transform(data: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(io.BytesIO(data))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return ImageCms.buildTransform(source, srgb, in_mode, out_mode)


@lru_cache(maxsize=_PROFILES_KEPT)
def _gray_curve(data: bytes) -> list[int]:
    """The profile's gray tone curve, as the sRGB gray levels of the 256 stored ones."""
    ramp = Image.frombytes("L", (256, 1), bytes(range(256)))
    converted = ImageCms.applyTransform(ramp, _transform(data, "L", "RGB"))
    assert converted is not None
    return list(converted.getchannel("G").getdata())
