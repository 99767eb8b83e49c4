"""Real ICC profiles made by the tests (ICC v2), and the colour difference they are judged by.

An Adobe RGB (1998) compatible matrix/TRC profile, a gray profile with a
gamma, and a CMYK printer profile with an 8-bit lookup table to Lab: the
kinds museum photography and print scans carry. LittleCMS (through Pillow's
`ImageCms`) reads them like any other profile.
"""

from __future__ import annotations

import math
import struct

_D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998) colorants adapted to D50 (Bradford), as Adobe's own profile has them.
ADOBE_RGB_COLORANTS = (
    (0.6097, 0.3111, 0.0195),
    (0.2053, 0.6257, 0.0609),
    (0.1492, 0.0632, 0.7446),
)
ADOBE_RGB_GAMMA = 563 / 256


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))


def _description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)  # no Unicode description
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67  # no ScriptCode description
    )


def _text(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, data = [], b""
    for signature, body in tags.items():
        entries.append(struct.pack(">4sII", signature, offset + len(data), len(body)))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, device_class, space, pcs)
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual
        + b"".join(_s15(v) for v in _D50)
        + b"\0" * 4  # creator
        + b"\0" * 44  # profile ID and reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + data


def rgb_profile(
    colorants: tuple[tuple[float, float, float], ...] = ADOBE_RGB_COLORANTS,
    gamma: float = ADOBE_RGB_GAMMA,
    description: str = "Adobe RGB (1998) compatible, made by the tests",
) -> bytes:
    red, green, blue = colorants
    curve = _curve(gamma)
    return _profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        {
            b"desc": _description(description),
            b"cprt": _text("No copyright, use freely"),
            b"wtpt": _xyz(_D50),
            b"rXYZ": _xyz(red),
            b"gXYZ": _xyz(green),
            b"bXYZ": _xyz(blue),
            b"rTRC": curve,
            b"gTRC": curve,
            b"bTRC": curve,
        },
    )


def gray_profile(gamma: float) -> bytes:
    return _profile(
        b"mntr",
        b"GRAY",
        b"XYZ ",
        {
            b"desc": _description(f"Gray gamma {gamma:g}, made by the tests"),
            b"cprt": _text("No copyright, use freely"),
            b"wtpt": _xyz(_D50),
            b"kTRC": _curve(gamma),
        },
    )


def cmyk_profile() -> bytes:
    """A printer profile: paper a little warm and dark, inks a little dull, a rich black."""
    points = 2
    clut = b""
    for c in range(points):
        for m in range(points):
            for y in range(points):
                for k in range(points):
                    rgb = [0.93 * (1 - 0.85 * ink) * (1 - 0.88 * k) for ink in (c, m, y)]
                    rgb[0] *= 1.0 if c else 0.99  # warm paper
                    lab = srgb_to_lab(tuple(round(255 * v) for v in rgb))  # type: ignore[arg-type]
                    clut += bytes(_lab8(lab))
    identity = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    ramp = bytes(range(256))
    a2b0 = (
        b"mft1\0\0\0\0"
        + struct.pack(">BBBB", 4, 3, points, 0)
        + b"".join(_s15(v) for v in identity)
        + ramp * 4
        + clut
        + ramp * 3
    )
    return _profile(
        b"prtr",
        b"CMYK",
        b"Lab ",
        {
            b"desc": _description("Test press CMYK, made by the tests"),
            b"cprt": _text("No copyright, use freely"),
            b"wtpt": _xyz(_D50),
            b"A2B0": a2b0,
        },
    )


def _lab8(lab: tuple[float, float, float]) -> list[int]:
    lightness, a, b = lab
    return [
        max(0, min(255, round(lightness * 255 / 100))),
        max(0, min(255, round(a + 128))),
        max(0, min(255, round(b + 128))),
    ]


def srgb_to_lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65 white) of an 8-bit sRGB colour."""

    def linear(value: int) -> float:
        v = value / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(v) for v in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    """CIE76 colour difference of two sRGB colours (about 2.3: just noticeable)."""
    return math.dist(srgb_to_lab(first[:3]), srgb_to_lab(second[:3]))  # type: ignore[arg-type]
