"""The parameter parsers: any text gives a value or a 400, and resolution follows the spec."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iiif_server.errors import BadRequest, NotImplementedFeature, ServerError
from iiif_server.iiif.params import (
    Limits,
    PixelBox,
    Region,
    Rotation,
    Size,
    parse_quality_format,
)

LIMITS = Limits(max_width=5000, max_height=4000, max_area=12_000_000, allow_upscaling=True)
NO_UPSCALING = Limits(max_width=5000, max_height=4000, max_area=12_000_000, allow_upscaling=False)
CONFINED_ERROR = dataclasses.replace(LIMITS, confined_size="error")


@pytest.mark.parametrize(
    ("text", "box"),
    [
        ("full", PixelBox(0, 0, 1000, 600)),
        ("square", PixelBox(200, 0, 600, 600)),
        ("10,20,30,40", PixelBox(10, 20, 30, 40)),
        ("900,500,500,500", PixelBox(900, 500, 100, 100)),  # cut at the edges
        ("pct:10,10,50,50", PixelBox(100, 60, 500, 300)),
        ("pct:50,50,80,80", PixelBox(500, 300, 500, 300)),
        ("pct:0.5,0,99.5,100", PixelBox(5, 0, 995, 600)),
    ],
)
def test_region_resolves_to_pixels(text: str, box: PixelBox) -> None:
    assert Region.parse(text).resolve(1000, 600) == box


@pytest.mark.parametrize(
    "text",
    ["", "ful", "0,0,0,10", "0,0,10,0", "-1,0,10,10", "1,2,3", "1,2,3,4,5", "pct:0,0,0,5",
     "pct:1e2,0,5,5", "pct:100,0,5,5", " full", "0x10,0,5,5", "1.5,0,5,5", "square!"],
)  # fmt: skip
def test_bad_region_syntax_is_400(text: str) -> None:
    with pytest.raises(BadRequest):
        Region.parse(text)


@pytest.mark.parametrize("text", ["1000,0,10,10", "0,600,10,10", "5000,5000,1,1"])
def test_region_outside_the_image_is_400(text: str) -> None:
    with pytest.raises(BadRequest):
        Region.parse(text).resolve(1000, 600)


REGION = PixelBox(0, 0, 1000, 600)


@pytest.mark.parametrize(
    ("version", "text", "size"),
    [
        (3, "max", (1000, 600)),
        (2, "full", (1000, 600)),
        (2, "max", (1000, 600)),
        (3, "500,", (500, 300)),
        (3, ",300", (500, 300)),
        (3, "pct:50", (500, 300)),
        (3, "200,200", (200, 200)),
        (3, "!500,500", (500, 300)),
        (3, "!2000,300", (500, 300)),
        (3, "^!2000,3000", (2000, 1200)),
        (3, "^2000,", (2000, 1200)),
        (3, "^pct:200", (2000, 1200)),
        (3, "^max", (1000, 600)),
        (2, "2000,", (2000, 1200)),  # 2.1 upscales without ^
        (2, "!2000,3000", (2000, 1200)),
    ],
)
def test_size_resolves(version: int, text: str, size: tuple[int, int]) -> None:
    assert Size.parse(text, version).resolve(REGION, LIMITS, version) == size  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["1001,", ",601", "1001,600", "pct:101"])
def test_v3_refuses_upscaling_without_caret(text: str) -> None:
    for limits in (LIMITS, CONFINED_ERROR):
        with pytest.raises(BadRequest):
            Size.parse(text, 3).resolve(REGION, limits, 3)


@pytest.mark.parametrize("text", ["!2000,3000", "!1000,1000", "!1001,601"])
def test_v3_confined_box_larger_than_the_region_gives_the_region(text: str) -> None:
    """3.0: "as large as possible but not larger than the extracted region, w or h"."""
    assert Size.parse(text, 3).resolve(REGION, LIMITS, 3) == (1000, 600)
    assert Size.parse(text, 3).resolve(REGION, NO_UPSCALING, 3) == (1000, 600)


def test_v3_confined_box_larger_than_the_region_is_400_when_configured() -> None:
    with pytest.raises(BadRequest, match="larger than the region"):
        Size.parse("!2000,3000", 3).resolve(REGION, CONFINED_ERROR, 3)
    # A box that shrinks the region in one direction is fine either way.
    assert Size.parse("!2000,300", 3).resolve(REGION, CONFINED_ERROR, 3) == (500, 300)


def test_confined_with_caret_and_in_v2_still_upscales() -> None:
    assert Size.parse("^!2000,3000", 3).resolve(REGION, LIMITS, 3) == (2000, 1200)
    assert Size.parse("!2000,3000", 2).resolve(REGION, LIMITS, 2) == (2000, 1200)


def test_caret_is_501_when_upscaling_is_disabled() -> None:
    with pytest.raises(NotImplementedFeature):
        Size.parse("^500,", 3).resolve(REGION, NO_UPSCALING, 3)


def test_v2_above_full_is_400_when_upscaling_is_disabled() -> None:
    with pytest.raises(BadRequest):
        Size.parse("2000,", 2).resolve(REGION, NO_UPSCALING, 2)


def test_sizes_beyond_the_limits_are_400_and_max_fits_them() -> None:
    with pytest.raises(BadRequest):
        Size.parse("^6000,", 3).resolve(REGION, LIMITS, 3)
    big = PixelBox(0, 0, 20000, 10000)
    width, height = Size.parse("max", 3).resolve(big, LIMITS, 3)
    assert width <= 5000 and height <= 4000 and width * height <= 12_000_000
    assert abs(width / height - 2) < 0.01


@pytest.mark.parametrize(
    ("version", "text"),
    [(3, "full"), (2, "^max"), (3, "0,"), (3, ",0"), (3, "pct:0"), (3, "!100,"), (3, ","),
     (3, "10,10,"), (3, "-5,"), (3, "pct:-5"), (3, "max "), (3, "1234567890123,")],
)  # fmt: skip
def test_bad_size_is_400(version: int, text: str) -> None:
    with pytest.raises(BadRequest):
        Size.parse(text, version).resolve(REGION, LIMITS, version)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "mirror", "degrees"),
    [("0", False, 0), ("90", False, 90), ("!180", True, 180), ("22.5", False, 22.5),
     ("360", False, 0), ("!0", True, 0), ("45.", False, 45)],
)  # fmt: skip
def test_rotation(text: str, mirror: bool, degrees: float) -> None:
    assert Rotation.parse(text) == Rotation(mirror, degrees)


@pytest.mark.parametrize("text", ["", "-90", "361", "!!90", "90!", "1e2", "abc", "+90"])
def test_bad_rotation_is_400(text: str) -> None:
    with pytest.raises(BadRequest):
        Rotation.parse(text)


def test_quality_and_format() -> None:
    assert parse_quality_format("default.jpg") == ("default", "jpg")
    assert parse_quality_format("bitonal.webp") == ("bitonal", "webp")
    for bad in ("default", "grey.jpg", "default.jpeg", "default.", ".jpg", "default.JPG"):
        with pytest.raises(BadRequest):
            parse_quality_format(bad)


@given(st.text(max_size=40))
def test_any_region_text_gives_a_value_or_400(text: str) -> None:
    try:
        region = Region.parse(text)
    except BadRequest:
        return
    try:
        box = region.resolve(1000, 600)
    except BadRequest:
        return
    assert 0 <= box.x < 1000 and 0 <= box.y < 600
    assert 0 < box.w <= 1000 - box.x and 0 < box.h <= 600 - box.y


@given(st.text(alphabet="0123456789,.!^pctmaxful:", max_size=20), st.sampled_from([2, 3]))
def test_any_size_text_gives_a_value_or_a_client_error(text: str, version: int) -> None:
    try:
        size = Size.parse(text, version)  # type: ignore[arg-type]
        width, height = size.resolve(REGION, LIMITS, version)  # type: ignore[arg-type]
    except ServerError as error:
        assert error.status in (400, 501)
        return
    assert 1 <= width <= LIMITS.max_width and 1 <= height <= LIMITS.max_height


@given(st.text(max_size=20))
def test_any_rotation_text_gives_a_value_or_400(text: str) -> None:
    try:
        rotation = Rotation.parse(text)
    except BadRequest:
        return
    assert 0 <= rotation.degrees < 360
    assert Rotation.parse(str(rotation)) == rotation  # the canonical form is a fixed point
