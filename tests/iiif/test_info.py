"""info.json for both versions: the fields viewers and the validator rely on."""

from __future__ import annotations

from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.info import InfoOptions, info_v2, info_v3, scale_factors, sizes
from iiif_server.iiif.params import Limits

LIMITS = Limits(max_width=10000, max_height=10000, max_area=50_000_000, allow_upscaling=True)
OPTIONS = InfoOptions(
    limits=LIMITS,
    tile_size=512,
    min_sizes_size=200,
    rights="http://rightsstatements.org/vocab/InC/1.0/",
)
INFO = ImageInfo(width=6000, height=4000, format="JPEG", mode="RGB")


def test_scale_factors_follow_the_image_size() -> None:
    assert scale_factors(512, 512, 512) == [1]
    assert scale_factors(1000, 1000, 512) == [1, 2]
    assert scale_factors(6000, 4000, 512) == [1, 2, 4, 8, 16]
    assert scale_factors(100, 40000, 512) == [1, 2, 4, 8, 16, 32, 64, 128]


def test_sizes_are_halvings_down_to_the_minimum() -> None:
    listed = sizes(INFO, OPTIONS)
    # The smallest listed size still has a side of at least min_sizes_size.
    assert listed[0] == {"width": 375, "height": 250}
    assert [s["width"] for s in listed] == [375, 750, 1500, 3000, 6000]
    small = InfoOptions(
        limits=Limits(2000, 2000, 4_000_000, True), tile_size=512, min_sizes_size=200
    )
    assert max(s["width"] for s in sizes(INFO, small)) == 1500  # within the limits only


def test_info_v3() -> None:
    document = info_v3("https://example.org/iiif/3/a", INFO, OPTIONS)
    assert next(iter(document)) == "@context"
    assert document["@context"] == "http://iiif.io/api/image/3/context.json"
    assert document["id"] == "https://example.org/iiif/3/a"
    assert document["type"] == "ImageService3"
    assert document["profile"] == "level2"
    assert (document["width"], document["height"]) == (6000, 4000)
    assert document["maxWidth"] == 10000 and document["maxArea"] == 50_000_000
    assert document["tiles"] == [{"width": 512, "height": 512, "scaleFactors": [1, 2, 4, 8, 16]}]
    assert {"color", "gray", "bitonal"} <= set(document["extraQualities"])
    assert {"webp", "gif", "tif", "jp2", "pdf"} == set(document["extraFormats"])
    assert {"sizeUpscaling", "mirroring", "rotationArbitrary"} <= set(document["extraFeatures"])
    assert document["rights"] == OPTIONS.rights


def test_info_v2() -> None:
    document = info_v2("https://example.org/iiif/2/a", INFO, OPTIONS)
    assert document["@context"] == "http://iiif.io/api/image/2/context.json"
    assert document["@id"] == "https://example.org/iiif/2/a"
    level, extras = document["profile"]
    assert level == "http://iiif.io/api/image/2/level2.json"
    assert "sizeAboveFull" in extras["supports"] and "mirroring" in extras["supports"]
    assert set(extras["qualities"]) == {"default", "color", "gray", "bitonal"}
    assert extras["maxWidth"] == 10000
    assert document["license"] == OPTIONS.rights and "rights" not in document
