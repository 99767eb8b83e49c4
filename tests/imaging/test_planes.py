"""Plain JPEGs decoded into planes: which files, the pixels, levels, cuts and encodes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from bench.images import photo_like
from iiif_server import errors
from iiif_server.imaging import decode, orientation
from iiif_server.imaging.planes import Planes
from iiif_server.imaging.probe import probe
from iiif_server.imaging.render import EncodeOptions, render

from .images import (
    MAX_PIXELS,
    near,
    noisy,
    psnr,
    quadrants,
    render_bytes,
    render_image,
    request,
    save,
)


def reencoded(image: Image.Image) -> Image.Image:
    """`image` through Pillow's JPEG encoder at the server's default quality."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return Image.open(out).convert(image.mode)


def decoded_planes(path: str) -> Planes:
    decoded = decode.decode(path, probe(path, MAX_PIXELS), 1, MAX_PIXELS)
    assert isinstance(decoded.image, Planes)
    return decoded.image


def pillow_pixels(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
@pytest.mark.parametrize("size", [(160, 96), (99, 61)])
def test_full_size_planes_are_the_pixels_pillow_decodes(
    tmp_path: Path, subsampling: str, size: tuple[int, int]
) -> None:
    path = save(noisy(*size), tmp_path / "n.jpg", quality=90, subsampling=subsampling)
    planes = decoded_planes(path)
    assert planes.size == size
    whole = planes.cut_image((0, 0, *size), size)
    assert whole.mode == "RGB" and whole.size == size
    assert psnr(whole, pillow_pixels(path)) >= 48


def test_a_4_2_0_source_takes_a_byte_and_a_half_a_pixel(tmp_path: Path) -> None:
    path = save(noisy(320, 240), tmp_path / "n.jpg", quality=90)
    decoded = decode.decode(path, probe(path, MAX_PIXELS), 1, MAX_PIXELS)
    assert decoded.nbytes == 320 * 240 * 3 // 2


def test_a_gray_jpeg_is_one_plane(tmp_path: Path) -> None:
    path = save(noisy(64, 48).convert("L"), tmp_path / "g.jpg", quality=90)
    planes = decoded_planes(path)
    assert planes.is_gray
    output = planes.cut_image((0, 0, 64, 48), (64, 48))
    assert output.mode == "L"
    assert psnr(output, Image.open(path).convert("L")) == float("inf")


def test_reduced_levels_keep_colour_at_their_own_resolution(tmp_path: Path) -> None:
    path = save(noisy(400, 300), tmp_path / "n.jpg", quality=90, subsampling="4:2:0")
    planes = decoded_planes(path)
    half = planes.reduce(2)
    assert half.size == (200, 150) and half.sampling == (1, 1)
    assert half.planes[1] is planes.planes[1]  # full-size chroma shared, not copied
    quarter = half.reduce(2)
    assert [plane.size for plane in quarter.planes] == [(100, 75)] * 3
    expected = pillow_pixels(path).reduce(4)
    assert psnr(quarter.cut_image((0, 0, 100, 75), (100, 75)), expected) >= 40


@pytest.mark.parametrize(
    ("box", "shared"),
    [
        ((0, 0, 64, 64), True),
        ((64, 32, 150, 101), True),  # the bottom right corner: odd height, the level's own
        ((50, 20, 113, 71), False),  # odd edges inside the level
        ((33, 21, 97, 85), False),  # starting on odd pixels
    ],
)
def test_a_levels_tiles_are_the_same_jpegs_with_the_chroma_its_next_level_made(
    tmp_path: Path, box: tuple[int, int, int, int], shared: bool
) -> None:
    """A level with chroma at its own resolution has it halved for the next level once;
    its 4:2:0 tiles are cut from that halving instead of halving their own piece."""
    path = save(noisy(300, 201), tmp_path / "n.jpg", quality=90, subsampling="4:2:0")
    half = decoded_planes(path).reduce(2)
    assert half.size == (150, 101) and half.sampling == (1, 1)
    quarter = half.reduce(2)
    assert quarter.planes[1:] == half.halved_chroma()  # made once, kept by both
    size = (box[2] - box[0], box[3] - box[1])
    without = Planes(half.planes, half.size, half.sampling)  # nothing halved yet
    assert half.cut(box, size).encode_jpeg(75) == without.cut(box, size).encode_jpeg(75)
    assert (half.cut(box, size).sampling == (2, 2)) is shared


def test_odd_sized_cuts_encode_to_jpegs_of_that_size(tmp_path: Path) -> None:
    path = save(noisy(300, 200), tmp_path / "n.jpg", quality=90)
    planes = decoded_planes(path)
    for box, size in [((0, 0, 75, 51), (75, 51)), ((10.5, 3, 300, 200), (97, 65))]:
        data = planes.cut(box, size).encode_jpeg(90)
        with Image.open(io.BytesIO(data)) as output:
            assert output.size == size
            expected = pillow_pixels(path).resize(size, Image.Resampling.LANCZOS, box=box)
            assert psnr(output.convert("RGB"), expected) >= 30


def test_progressive_jpegs_decode_into_planes(tmp_path: Path) -> None:
    path = save(noisy(128, 64), tmp_path / "p.jpg", quality=90, progressive=True)
    assert (
        psnr(decoded_planes(path).cut_image((0, 0, 128, 64), (128, 64)), pillow_pixels(path)) >= 48
    )


def test_cmyk_jpegs_are_left_to_pillow(tmp_path: Path) -> None:
    path = save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), tmp_path / "c.jpg")
    decoded = decode.decode(path, probe(path, MAX_PIXELS), 1, MAX_PIXELS)
    assert isinstance(decoded.image, Image.Image) and decoded.image.mode == "RGB"


def test_trailing_data_far_beyond_the_pixels_is_not_read_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "junk.jpg"
    path.write_bytes(Path(save(noisy(16, 16), path, quality=90)).read_bytes() + bytes(2 << 20))
    decoded = decode.decode(str(path), probe(str(path), MAX_PIXELS), 1, MAX_PIXELS)
    assert isinstance(decoded.image, Image.Image)  # Pillow streams it


def test_a_truncated_jpeg_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "short.jpg"
    data = Path(save(noisy(256, 256), path, quality=90)).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.SourceError, match="corrupt or truncated"):
        decode.decode(str(path), probe(str(path), MAX_PIXELS), 1, MAX_PIXELS)


def test_a_file_replaced_by_another_size_is_an_error(tmp_path: Path) -> None:
    path = save(noisy(64, 48), tmp_path / "n.jpg", quality=90)
    info = probe(path, MAX_PIXELS)
    save(noisy(48, 64), Path(path), quality=90)
    with pytest.raises(errors.SourceError, match="changed"):
        decode.decode(path, info, 1, MAX_PIXELS)


def test_gray_quality_from_planes_is_the_luma(tmp_path: Path, worker: None) -> None:
    path = save(noisy(128, 128), tmp_path / "n.jpg", quality=95)
    exact_gray = pillow_pixels(path).convert("L")
    png = render_image(path, (0, 0, 128, 128), (128, 128), quality="gray", fmt="png")
    assert png.mode == "L" and psnr(png, exact_gray) >= 48
    jpeg = render_image(path, (0, 0, 128, 128), (128, 128), quality="gray", fmt="jpg")
    assert jpeg.mode == "L"
    assert psnr(jpeg, exact_gray) >= psnr(reencoded(exact_gray), exact_gray) - 0.5


def test_color_quality_of_a_gray_source_is_rgb(tmp_path: Path, worker: None) -> None:
    path = save(noisy(64, 64).convert("L"), tmp_path / "g.jpg", quality=95)
    assert render_image(path, quality="color", fmt="jpg").mode == "RGB"
    assert render_image(path, fmt="jpg").mode == "L"


def test_a_tile_of_an_exif_turned_jpeg_is_upright(tmp_path: Path, worker: None) -> None:
    """Orientation 6: stored turned 90 degrees anticlockwise, shown turned back."""
    stored = quadrants(400, 200).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[274] = 6
    path = save(stored, tmp_path / "o.jpg", quality=95, exif=exif.tobytes())
    output = render_image(path, (200, 0, 200, 100), (100, 50), fmt="jpg")
    assert output.size == (100, 50)
    assert near(output.getpixel((50, 25)), (0, 255, 0), 16)  # the top right quadrant: green


# What stores an upright picture so that its EXIF orientation turns it back upright.
_STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def turned_jpeg(
    tmp_path: Path, upright: Image.Image, exif_orientation: int, subsampling: str
) -> str:
    transpose = _STORED_AS[exif_orientation]
    stored = upright if transpose is None else upright.transpose(transpose)
    exif = Image.Exif()
    exif[274] = exif_orientation
    path = tmp_path / f"turned-{exif_orientation}.jpg"
    return save(stored, path, quality=95, subsampling=subsampling, exif=exif.tobytes())


def turned_tile(
    path: str, region: tuple[int, int, int, int], size: tuple[int, int], deep_zoom: bool
) -> bytes:
    info = probe(path, MAX_PIXELS)
    job = request(info, region, size, fmt="jpg")
    return render(path, "v1", info, job, EncodeOptions(), deep_zoom=deep_zoom)


@pytest.mark.parametrize("deep_zoom", [False, True])  # a region decoded alone; planes
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2"])
@pytest.mark.parametrize("exif_orientation", range(1, 9))
@pytest.mark.parametrize(
    ("region", "size"),
    [
        ((160, 64, 128, 96), (128, 96)),  # whole chroma samples: the planes turned
        ((33, 17, 101, 75), (101, 75)),  # odd sides: through RGB
        ((0, 0, 320, 192), (80, 48)),  # a reduced level
    ],
)
def test_tiles_of_an_exif_turned_jpeg_show_the_picture_upright(
    tmp_path: Path,
    worker: None,
    deep_zoom: bool,
    subsampling: str,
    exif_orientation: int,
    region: tuple[int, int, int, int],
    size: tuple[int, int],
) -> None:
    upright = photo_like(320, 192, seed=3)
    upright.paste((255, 0, 0), (160, 64, 192, 96))  # a red corner: a wrong turn moves it
    path = turned_jpeg(tmp_path, upright, exif_orientation, subsampling)
    output = Image.open(io.BytesIO(turned_tile(path, region, size, deep_zoom))).convert("RGB")
    assert output.size == size
    with Image.open(path) as source:
        shown = ImageOps.exif_transpose(source).convert("RGB")  # Pillow's own reading
    x, y, w, h = region
    expected = shown.resize(size, Image.Resampling.LANCZOS, box=(x, y, x + w, y + h))
    # 24-35 dB for this busy picture, the same for every orientation; 11 turned wrong.
    assert psnr(output, expected) >= 23


@pytest.mark.parametrize("exif_orientation", [3, 6, 7])
def test_a_turned_jpegs_tile_is_its_planes_turned(
    tmp_path: Path, worker: None, exif_orientation: int
) -> None:
    """No RGB round trip for a portrait from a phone: a session's tile is encoded from
    the stored planes, cut and turned as planes, as a plain JPEG's tile is."""
    path = turned_jpeg(tmp_path, photo_like(320, 192, seed=3), exif_orientation, "4:2:0")
    stored = orientation.stored_size(exif_orientation, (320, 192))
    box = orientation.to_stored_box(exif_orientation, (160, 64, 288, 160), stored)
    size = (128, 96)
    piece = decoded_planes(path).cut(box, orientation.stored_size(exif_orientation, size))
    upright = piece.turned(exif_orientation)
    assert upright is not None and upright.size == size
    tile = turned_tile(path, (160, 64, 128, 96), size, deep_zoom=True)
    assert tile == upright.encode_jpeg(EncodeOptions().jpeg_quality)


def test_planes_turn_only_on_whole_chroma_samples(tmp_path: Path) -> None:
    path = save(noisy(64, 32), tmp_path / "n.jpg", quality=90, subsampling="4:2:2")
    planes = decoded_planes(path)
    turned = planes.turned(6)
    assert turned is not None
    assert (turned.size, turned.sampling) == ((32, 64), (1, 2))
    assert [plane.size for plane in turned.planes] == [(32, 64), (32, 32), (32, 32)]
    assert planes.cut((0, 0, 33, 32), (33, 32)).turned(6) is None


def test_a_jpeg_from_planes_is_as_good_as_one_from_rgb_levels(tmp_path: Path, worker: None) -> None:
    """A tile cut from a halved level and encoded straight from planes loses no more than
    the same level kept in RGB and encoded by Pillow (measured against exact Lanczos)."""
    path = save(photo_like(1024, 768, seed=3), tmp_path / "p.jpg", quality=90)
    source = pillow_pixels(path)
    exact = source.resize((256, 256), Image.Resampling.LANCZOS, box=(512, 256, 1024, 768))
    rgb_level = reencoded(source.reduce(2).crop((256, 128, 512, 384)))
    jpeg = Image.open(io.BytesIO(render_bytes(path, (512, 256, 512, 512), (256, 256), fmt="jpg")))
    assert jpeg.size == (256, 256)
    assert psnr(jpeg.convert("RGB"), exact) >= psnr(rgb_level, exact) - 0.2
