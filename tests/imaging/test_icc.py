"""Embedded ICC profiles: colours come out as the profile says, the same in every output."""

from __future__ import annotations

import io
from itertools import combinations
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from iiif_server.imaging import icc
from iiif_server.imaging.probe import probe
from iiif_server.imaging.render import EncodeOptions, render

from .icc_profiles import cmyk_profile, delta_e, gray_profile, rgb_profile
from .images import MAX_PIXELS, request, save

# Saturated colours inside both gamuts, which Adobe RGB and sRGB encode differently.
LEAF = (120, 180, 80)
BRICK = (200, 60, 40)
WIDTH, HEIGHT = 1024, 768
# JPEG at quality 95 without chroma subsampling keeps a flat patch within this.
JPEG_TOLERANCE = 2.5


def reference(colour: tuple[int, ...], profile: bytes, mode: str = "RGB") -> tuple[int, ...]:
    """The colour converted by LittleCMS itself from `profile` to sRGB."""
    pixel = Image.new(mode, (1, 1), colour)
    srgb = ImageCms.createProfile("sRGB")
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    converted = ImageCms.profileToProfile(pixel, source, srgb, outputMode="RGB")
    assert converted is not None
    value = converted.getpixel((0, 0))
    assert isinstance(value, tuple)
    return value


def two_patches(mode: str, left: tuple[int, ...], right: tuple[int, ...]) -> Image.Image:
    image = Image.new(mode, (WIDTH, HEIGHT), left)
    image.paste(right, (WIDTH // 2, 0, WIDTH, HEIGHT))
    return image


def outputs(path: str, deep_zoom_too: bool = True) -> dict[str, Image.Image]:
    """Whole image, a tile at full resolution, a thumbnail, in several formats."""
    info = probe(path, MAX_PIXELS)
    asks = {
        "max.jpg": request(info, fmt="jpg"),
        "max.png": request(info, fmt="png"),
        "max.webp": request(info, fmt="webp"),
        "tile.jpg": request(info, (0, 256, 256, 256), fmt="jpg"),
        "tile.png": request(info, (0, 256, 256, 256), fmt="png"),
        "thumbnail.jpg": request(info, size=(128, 96), fmt="jpg"),
        "half.png": request(info, size=(512, 384), fmt="png"),
    }
    results: dict[str, Image.Image] = {}
    for name, ask in asks.items():
        for deep_zoom in (False, True) if deep_zoom_too else (False,):
            data = render(path, "v1", info, ask, EncodeOptions(jpeg_quality=95), deep_zoom)
            results[f"{name}{' zoom' if deep_zoom else ''}"] = Image.open(io.BytesIO(data))
    return results


def left_patch(image: Image.Image) -> tuple[int, ...]:
    """The colour in the middle of the left patch (the tile lies inside it)."""
    value = image.convert("RGB").getpixel((image.width // 4, image.height // 2))
    assert isinstance(value, tuple)
    return value


@pytest.mark.parametrize("fmt", ["jpg", "png", "tif", "webp"])
def test_an_adobe_rgb_source_keeps_its_colour_in_every_output(
    tmp_path: Path, fmt: str, worker: None
) -> None:
    profile = rgb_profile()
    expected = reference(LEAF, profile)
    assert delta_e(expected, LEAF) > 10  # the profile matters: the test can fail
    options = {"quality": 95, "subsampling": 0} if fmt == "jpg" else {}
    if fmt == "webp":
        options = {"lossless": True}
    path = save(two_patches("RGB", LEAF, BRICK), tmp_path / f"adobe.{fmt}",
                icc_profile=profile, **options)  # fmt: skip
    assert probe(path, MAX_PIXELS).icc_profile
    colours = {name: left_patch(image) for name, image in outputs(path).items()}
    for name, colour in colours.items():
        assert delta_e(colour, expected) < JPEG_TOLERANCE, (name, colour, expected)
    for (one, first), (other, second) in combinations(colours.items(), 2):
        assert delta_e(first, second) < JPEG_TOLERANCE, (one, first, other, second)


def test_outputs_of_a_profiled_source_carry_no_profile(tmp_path: Path, worker: None) -> None:
    """The pixels are sRGB now; a profile left on them would convert them twice."""
    path = save(two_patches("RGB", LEAF, BRICK), tmp_path / "adobe.png", icc_profile=rgb_profile())
    for image in outputs(path, deep_zoom_too=False).values():
        assert "icc_profile" not in image.info


def test_a_whole_profiled_jpeg_is_not_sent_as_it_is(tmp_path: Path, worker: None) -> None:
    path = save(two_patches("RGB", LEAF, BRICK), tmp_path / "adobe.jpg", quality=95,
                icc_profile=rgb_profile())  # fmt: skip
    info = probe(path, MAX_PIXELS)
    for ask in (request(info, fmt="jpg", quality="color"), request(info, fmt="jpg", rotation=90),
                request(info, fmt="jpg", quality="gray")):  # fmt: skip
        assert render(path, "v1", info, ask, EncodeOptions()) != Path(path).read_bytes()
        output = Image.open(io.BytesIO(render(path, "v1", info, ask, EncodeOptions())))
        assert "icc_profile" not in output.info


def test_srgb_and_untagged_jpegs_keep_their_lossless_paths(tmp_path: Path, worker: None) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, extra in (("srgb", {"icc_profile": srgb}), ("plain", {})):
        path = save(two_patches("RGB", LEAF, BRICK), tmp_path / f"{name}.jpg", **extra)
        info = probe(path, MAX_PIXELS)
        assert not info.icc_profile
        whole = request(info, fmt="jpg", quality="color")  # as the service resolves "default"
        assert render(path, "v1", info, whole, EncodeOptions()) == Path(path).read_bytes()


def test_a_gray_source_with_a_gamma_profile(tmp_path: Path, worker: None) -> None:
    profile = gray_profile(1.0)  # linear: stored 128 is half the light, sRGB 188
    expected = reference((128,), profile, "L")
    assert abs(expected[0] - 188) <= 1
    for fmt, options in (("png", {}), ("jpg", {"quality": 95})):
        path = save(Image.new("L", (WIDTH, HEIGHT), 128), tmp_path / f"gray.{fmt}",
                    icc_profile=profile, **options)  # fmt: skip
        assert probe(path, MAX_PIXELS).icc_profile
        for name, image in outputs(path, deep_zoom_too=False).items():
            assert image.mode in ("L", "RGB"), name  # still a gray image
            assert abs(left_patch(image)[0] - expected[0]) <= 1, name


def test_a_cmyk_source_goes_through_its_profile(tmp_path: Path, worker: None) -> None:
    profile = cmyk_profile()
    ink = (0, 200, 220, 30)
    expected = reference(ink, profile, "CMYK")
    naive = Image.new("CMYK", (1, 1), ink).convert("RGB").getpixel((0, 0))
    assert isinstance(naive, tuple) and delta_e(expected, naive) > 5
    for fmt in ("jpg", "tif"):
        image = two_patches("CMYK", ink, (0, 0, 0, 0))
        path = save(image, tmp_path / f"press.{fmt}", icc_profile=profile, quality=95)
        assert probe(path, MAX_PIXELS).icc_profile
        for name, output in outputs(path, deep_zoom_too=False).items():
            assert delta_e(left_patch(output), expected) < JPEG_TOLERANCE, (fmt, name)


def test_alpha_is_kept_through_the_conversion(tmp_path: Path, worker: None) -> None:
    profile = rgb_profile()
    path = save(Image.new("RGBA", (64, 64), (*LEAF, 100)), tmp_path / "alpha.png",
                icc_profile=profile)  # fmt: skip
    info = probe(path, MAX_PIXELS)
    output = Image.open(io.BytesIO(render(path, "v1", info, request(info), EncodeOptions())))
    assert output.mode == "RGBA"
    pixel = output.getpixel((10, 10))
    assert isinstance(pixel, tuple) and pixel[3] == 100
    assert delta_e(pixel, reference(LEAF, profile)) < 1


@pytest.mark.parametrize(
    "profile",
    [b"not a profile at all", gray_profile(1.0)],  # unreadable; gray on RGB pixels
    ids=["unreadable", "mismatched"],
)
def test_a_profile_that_cannot_apply_is_ignored(
    tmp_path: Path, profile: bytes, worker: None
) -> None:
    path = save(Image.new("RGB", (64, 64), LEAF), tmp_path / "odd.png", icc_profile=profile)
    info = probe(path, MAX_PIXELS)
    assert not info.icc_profile
    output = Image.open(io.BytesIO(render(path, "v1", info, request(info), EncodeOptions())))
    assert output.getpixel((10, 10)) == LEAF


def test_embedded_profile_reads_what_applies() -> None:
    image = Image.new("RGB", (1, 1))
    assert icc.embedded_profile(image) is None
    image.info["icc_profile"] = rgb_profile()
    assert icc.embedded_profile(image) == rgb_profile()
    image.info["icc_profile"] = rgb_profile(description="sRGB IEC61966-2.1")
    assert icc.embedded_profile(image) is None
