"""Spellings of one output resolve to one request; canonical paths follow the spec."""

from __future__ import annotations

import pytest

from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.params import Limits
from iiif_server.iiif.request import canonical_path, parse_image_request

INFO = ImageInfo(width=1000, height=800, format="JPEG", mode="RGB")
GRAY = ImageInfo(width=1000, height=800, format="PNG", mode="L")
LIMITS = Limits(max_width=5000, max_height=5000, max_area=25_000_000, allow_upscaling=True)


def key(version: int, region: str, size: str, rotation: str = "0", qf: str = "default.jpg") -> str:
    return parse_image_request(version, region, size, rotation, qf, INFO, LIMITS).canonical  # type: ignore[arg-type]


def test_spellings_of_one_output_share_a_key() -> None:
    assert key(3, "full", "500,") == key(3, "full", "500,400") == key(2, "full", "500,")
    assert key(3, "full", "max") == key(2, "full", "full") == key(3, "0,0,1000,800", "1000,800")
    assert key(3, "pct:50,50,50,50", "max") == key(3, "500,400,500,400", "max")
    assert key(3, "full", "pct:50") == key(3, "full", "!500,500") == key(2, "full", ",400")
    assert key(3, "full", "max", "0", "default.jpg") == key(3, "full", "max", "360", "color.jpg")


def test_different_outputs_have_different_keys() -> None:
    keys = {
        key(3, "full", "max"),
        key(3, "full", "max", "!0"),
        key(3, "full", "max", "90"),
        key(3, "full", "max", "0", "gray.jpg"),
        key(3, "full", "max", "0", "default.png"),
        key(3, "full", "500,"),
    }
    assert len(keys) == 6


def test_default_quality_of_a_gray_source_is_gray() -> None:
    request = parse_image_request(3, "full", "max", "0", "default.png", GRAY, LIMITS)
    assert request.quality == "gray"


@pytest.mark.parametrize(
    ("version", "region", "size", "rotation", "qf", "canonical"),
    [
        (3, "full", "max", "0", "default.jpg", "full/max/0/default.jpg"),
        (3, "0,0,1000,800", "1000,", "0", "color.jpg", "full/max/0/default.jpg"),
        (3, "square", "256,", "!90.0", "gray.png", "100,0,800,800/256,256/!90/gray.png"),
        (3, "full", "^2000,", "22.50", "default.jpg", "full/^2000,1600/22.5/default.jpg"),
        (2, "full", "full", "0", "default.jpg", "full/full/0/default.jpg"),
        (2, "full", "!500,500", "0", "default.jpg", "full/500,/0/default.jpg"),
        (2, "full", "500,100", "0", "bitonal.tif", "full/500,100/0/bitonal.tif"),
    ],
)
def test_canonical_path(
    version: int, region: str, size: str, rotation: str, qf: str, canonical: str
) -> None:
    request = parse_image_request(version, region, size, rotation, qf, INFO, LIMITS)  # type: ignore[arg-type]
    assert canonical_path(version, request, INFO) == canonical  # type: ignore[arg-type]


def test_every_part_is_checked_before_resolution() -> None:
    # The region lies outside the image, but the bad quality is what gets reported.
    with pytest.raises(Exception, match="quality"):
        parse_image_request(3, "5000,5000,1,1", "max", "0", "grey.jpg", INFO, LIMITS)
