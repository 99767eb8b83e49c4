"""Fast paths against the exact result: same sizes, >= 32 dB, lossless paths byte-exact.

The exact result is the plain pipeline: decode everything, crop, Lanczos, no
reduced decoding and no cached levels.
"""

from __future__ import annotations

import io
from pathlib import Path

import jpegtran
import jpegtran.lib
import pytest
from PIL import Image, ImageCms, ImageOps

from bench.images import photo_like
from bench.session import zoom_session
from iiif_server.errors import SourceError
from iiif_server.imaging import render as render_module
from iiif_server.imaging.decoded_cache import DecodedKey
from iiif_server.imaging.probe import probe
from iiif_server.imaging.render import EncodeOptions, choose_scale, decoded_cache_stats, render

from .images import MAX_PIXELS, psnr, request

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 3000x2000 photo-like baseline JPEG q90."""
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    photo_like(3000, 2000, seed=7).save(path, "JPEG", quality=90)
    return str(path)


def exact(path: str, box: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
    with Image.open(path) as source:
        source.load()
        return source.crop(box).resize(size, Image.Resampling.LANCZOS)


def rendered(path: str, region: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
    info = probe(path, MAX_PIXELS)
    data = render(path, "v1", info, request(info, region, size, fmt="png"), EncodeOptions())
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.mark.parametrize("box", [(512, 512), (200, 200), (1000, 1000), (90, 60)])
def test_thumbnails_by_reduced_decoding(photo: str, box: tuple[int, int]) -> None:
    scale = min(box[0] / 3000, box[1] / 2000)
    size = (round(3000 * scale), round(2000 * scale))
    output = rendered(photo, (0, 0, 3000, 2000), size)
    assert output.size == size
    assert psnr(output, exact(photo, (0, 0, 3000, 2000), size)) >= 32


def test_every_tile_of_a_deep_zoom_session(photo: str) -> None:
    """Cut from cached levels (halvings of one decode): exact sizes, >= 32 dB each."""
    for tile in zoom_session(3000, 2000):
        region_text, size_text = tile.split("/")[:2]
        x, y, w, h = (int(v) for v in region_text.split(","))
        size = tuple(int(v) for v in size_text.split(","))
        assert len(size) == 2
        output = rendered(photo, (x, y, w, h), (size[0], size[1]))
        assert output.size == size, tile
        quality = psnr(output, exact(photo, (x, y, x + w, y + h), (size[0], size[1])))
        assert quality >= 32, (tile, quality)


def test_full_resolution_tiles_are_the_source_pixels(photo: str) -> None:
    """Up to the rounding of chroma upsampling, which libjpeg and Pillow do a little apart."""
    rendered(photo, (0, 0, 1024, 1024), (256, 256))  # a session has filled the cache
    output = rendered(photo, (1024, 512, 512, 512), (512, 512))
    assert psnr(output, exact(photo, (1024, 512, 1536, 1024), (512, 512))) >= 48


def test_full_resolution_jpeg_tiles_lose_less_than_a_reencoding(photo: str) -> None:
    """Planes re-encoded on the source's own block grid come back closer than RGB would."""
    source = exact(photo, (1024, 512, 1536, 1024), (512, 512))
    reencoded = io.BytesIO()
    source.save(reencoded, "JPEG", quality=90)
    info = probe(photo, MAX_PIXELS)
    job = request(info, (1024, 512, 512, 512), (512, 512), fmt="jpg")
    tile = render(photo, "v1", info, job, EncodeOptions())
    ours = psnr(Image.open(io.BytesIO(tile)).convert("RGB"), source)
    assert ours >= psnr(Image.open(reencoded).convert("RGB"), source)


@pytest.fixture(scope="module")
def blocky(tmp_path_factory: pytest.TempPathFactory) -> str:
    """1024x768, 4:2:0: made of whole 16x16 blocks, as jpegtran's exact turns need."""
    path = tmp_path_factory.mktemp("blocky") / "blocky.jpg"
    photo_like(1024, 768, seed=5).save(path, "JPEG", quality=90, subsampling="4:2:0")
    return str(path)


def jpg(path: str, *, mirror: bool = False, rotation: float = 0, quality: str = "color") -> bytes:
    info = probe(path, MAX_PIXELS)
    job = request(info, mirror=mirror, rotation=rotation, quality=quality, fmt="jpg")
    return render(path, "v1", info, job, EncodeOptions())


def test_the_whole_jpeg_is_served_as_it_is(photo: str) -> None:
    assert jpg(photo) == Path(photo).read_bytes()


@pytest.mark.parametrize(
    ("mirror", "rotation"), [(False, 90), (False, 180), (True, 0), (True, 270)]
)
def test_quarter_turns_and_mirroring_are_jpegtrans_lossless_output(
    blocky: str, mirror: bool, rotation: int
) -> None:
    expected = jpegtran.JPEGImage(blocky)
    if mirror:
        expected = expected.flip("horizontal")
    if rotation:
        expected = expected.rotate(rotation)
    output = jpg(blocky, mirror=mirror, rotation=rotation)
    assert output == expected.as_blob()
    size = Image.open(io.BytesIO(output)).size
    assert size == ((768, 1024) if rotation in (90, 270) else (1024, 768))


@pytest.mark.parametrize("rotation", [0, 90])
def test_gray_is_jpegtrans_lossless_output(blocky: str, rotation: int) -> None:
    data = bytes(jpegtran.lib.Transformation(Path(blocky).read_bytes()).grayscale())
    expected = jpegtran.JPEGImage(blob=data)
    if rotation:
        expected = expected.rotate(rotation)
    output = jpg(blocky, rotation=rotation, quality="gray")
    assert output == expected.as_blob()
    with Image.open(io.BytesIO(output)) as gray, Image.open(blocky) as source:
        assert gray.mode == "L"
        luma = source.convert("L").rotate(-rotation, expand=True)
        assert psnr(gray.convert("RGB"), luma.convert("RGB")) >= 40  # rounding apart


def test_gray_of_a_jpeg_with_a_colour_profile_is_decoded(tmp_path: Path) -> None:
    """jpegtran would copy the RGB profile onto the gray image; decoding drops it."""
    path = tmp_path / "icc.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo_like(64, 48, seed=2).save(path, "JPEG", quality=90, icc_profile=profile)
    with Image.open(io.BytesIO(jpg(str(path), quality="gray"))) as gray:
        assert gray.mode == "L" and "icc_profile" not in gray.info


def test_partial_blocks_fall_back_to_decoding(tmp_path: Path) -> None:
    path = tmp_path / "odd.jpg"
    photo_like(1001, 603, seed=3).save(path, "JPEG", quality=90)
    output = Image.open(io.BytesIO(jpg(str(path), rotation=90)))
    assert output.size == (603, 1001)
    with Image.open(path) as source:
        turned = source.transpose(Image.Transpose.ROTATE_270).convert("RGB")
    assert psnr(output.convert("RGB"), turned) >= 32


def test_a_truncated_jpeg_is_never_passed_through(photo: str, tmp_path: Path) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(Path(photo).read_bytes()[:-5000])
    with pytest.raises(SourceError):
        jpg(str(cut))


@pytest.mark.parametrize("deep_zoom", [False, True])
def test_a_thumbnail_in_a_zoom_session_comes_from_the_full_decode(
    photo: str, deep_zoom: bool
) -> None:
    """After an info.json, a whole-image request decodes at full size (tiles follow)."""
    info = probe(photo, MAX_PIXELS)
    job = request(info, size=(375, 250), fmt="png")
    data = render(photo, "v1", info, job, EncodeOptions(), deep_zoom=deep_zoom)
    output = Image.open(io.BytesIO(data)).convert("RGB")
    assert output.size == (375, 250)
    assert psnr(output, exact(photo, (0, 0, 3000, 2000), (375, 250))) >= 32
    full_size_decoded = 3000 * 2000  # at least the luma plane of a full decode
    assert (decoded_cache_stats()["bytes"] >= full_size_decoded) is deep_zoom


def test_a_session_halves_its_levels_past_the_reduced_jpeg_decoding(photo: str) -> None:
    """A session's whole-image tile at 1/16 is a level of its own (the 1/8 level halved),
    not a Lanczos resampling of the 1/8 level, which a JPEG decodes reduced at most."""
    info = probe(photo, MAX_PIXELS)
    job = request(info, size=(187, 125), fmt="png")
    assert choose_scale(info, job) == 8
    assert choose_scale(info, job, deep_zoom=True) == 16
    data = render(photo, "v1", info, job, EncodeOptions(), deep_zoom=True)
    output = Image.open(io.BytesIO(data)).convert("RGB")
    assert output.size == (187, 125)
    assert psnr(output, exact(photo, (0, 0, 3000, 2000), (187, 125))) >= 32
    worker = render_module._worker
    assert worker is not None
    assert worker.cache.peek(DecodedKey(photo, "v1", info.page, 16)) is not None


def test_a_cold_full_resolution_region_is_decoded_alone(photo: str) -> None:
    """Outside a zoom session, one tile of a source not decoded yet: only its pixels."""
    output = rendered(photo, (1001, 777, 512, 300), (512, 300))  # left edge inside a block
    assert decoded_cache_stats()["bytes"] == 0
    assert psnr(output, exact(photo, (1001, 777, 1513, 1077), (512, 300))) >= 45
    rendered(photo, (2488, 1700, 512, 300), (512, 300))  # the bottom right corner
    assert decoded_cache_stats()["bytes"] >= 3000 * 2000  # a second one: the whole, cached


def test_in_a_zoom_session_the_first_tile_decodes_the_whole(photo: str) -> None:
    info = probe(photo, MAX_PIXELS)
    job = request(info, (1024, 512, 512, 512), (512, 512), fmt="png")
    render(photo, "v1", info, job, EncodeOptions(), deep_zoom=True)
    assert decoded_cache_stats()["bytes"] >= 3000 * 2000


def test_a_region_decoded_alone_of_a_turned_jpeg_is_upright(tmp_path: Path) -> None:
    """EXIF orientation 6: the region is found in the stored pixels, then turned."""
    upright = photo_like(1200, 800, seed=4)
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[274] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif.tobytes())
    output = rendered(str(path), (600, 200, 256, 256), (256, 256))
    assert decoded_cache_stats()["bytes"] == 0
    with Image.open(path) as stored:
        shown = ImageOps.exif_transpose(stored).convert("RGB")
    assert psnr(output, shown.crop((600, 200, 856, 456))) >= 45
