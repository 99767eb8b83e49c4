"""The TurboJPEG binding: headers, planar decoding and encoding, refusals."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench.images import photo_like
from iiif_server.imaging import turbojpeg

from .images import noisy, psnr


def jpeg(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def test_the_bundled_library_is_found() -> None:
    """jpegtran-cffi-wheels is a dependency and bundles libjpeg-turbo 3: no fallback in use."""
    assert turbojpeg.available()


@pytest.mark.parametrize(
    ("subsampling", "sampling"), [("4:2:0", (2, 2)), ("4:2:2", (2, 1)), ("4:4:4", (1, 1))]
)
def test_header_of_colour_jpegs(subsampling: str, sampling: tuple[int, int]) -> None:
    data = jpeg(noisy(101, 67), subsampling=subsampling)
    assert turbojpeg.read_header(data) == turbojpeg.Header(101, 67, sampling, 3)


def test_header_of_a_gray_jpeg() -> None:
    assert turbojpeg.read_header(jpeg(noisy(40, 30).convert("L"))) == turbojpeg.Header(
        40, 30, (1, 1), 1
    )


def test_cmyk_and_garbage_are_refused() -> None:
    with pytest.raises(turbojpeg.TurboJpegError):
        turbojpeg.read_header(jpeg(Image.new("CMYK", (16, 16), (0, 255, 255, 0))))
    with pytest.raises(turbojpeg.TurboJpegError):
        turbojpeg.read_header(b"\xff\xd8 not a jpeg at all")


def test_planes_decode_to_the_pixels_pillow_decodes() -> None:
    data = jpeg(noisy(99, 61))  # odd sizes: the luma plane is padded
    header = turbojpeg.read_header(data)
    size, buffers = turbojpeg.decode_planes(data, header)
    assert size == (99, 61)
    (luma_w, luma_h), (chroma_w, chroma_h), _ = turbojpeg.plane_sizes(99, 61, (2, 2), 3)
    assert (luma_w, luma_h, chroma_w, chroma_h) == (100, 62, 50, 31)
    assert [len(buffer) for buffer in buffers] == [100 * 62, 50 * 31, 50 * 31]
    luma = Image.frombuffer("L", (100, 62), bytes(buffers[0]), "raw", "L", 0, 1).crop(
        (0, 0, 99, 61)
    )
    expected = Image.open(io.BytesIO(data)).convert("YCbCr").getchannel(0)
    assert psnr(luma.convert("RGB"), expected.convert("RGB")) >= 50


def test_a_truncated_file_raises_rather_than_turning_grey() -> None:
    data = jpeg(noisy(64, 64))
    short = data[: len(data) // 2]
    with pytest.raises(turbojpeg.TurboJpegError):
        turbojpeg.decode_planes(short, turbojpeg.read_header(short))


def test_planes_encode_to_a_jpeg_of_those_planes() -> None:
    """As good as Pillow's own encoder given the same pixels (both 4:2:0, quality 90)."""
    source = photo_like(64, 48, seed=1)
    y, cb, cr = source.convert("YCbCr").split()
    planes = [y.tobytes(), cb.reduce(2).tobytes(), cr.reduce(2).tobytes()]
    data = turbojpeg.encode_planes(planes, (64, 48), (2, 2), 90)
    with Image.open(io.BytesIO(data)) as decoded:
        assert (decoded.format, decoded.size, decoded.mode) == ("JPEG", (64, 48), "RGB")
        ours = psnr(decoded.convert("RGB"), source)
    pillows = psnr(Image.open(io.BytesIO(jpeg(source))).convert("RGB"), source)
    assert ours >= pillows - 0.5


def test_a_plane_of_the_wrong_size_is_refused_before_the_library_reads_it() -> None:
    with pytest.raises(ValueError, match="size"):
        turbojpeg.encode_planes([b"\x00" * 10, b"", b""], (64, 48), (2, 2), 90)


def _planes_of(source: Image.Image) -> list[bytes]:
    y, cb, cr = source.convert("YCbCr").split()
    return [y.tobytes(), cb.reduce(2).tobytes(), cr.reduce(2).tobytes()]


def test_optimized_and_progressive_jpegs_are_smaller_with_the_same_pixels() -> None:
    planes = _planes_of(photo_like(256, 128, seed=2))
    plain = turbojpeg.encode_planes(planes, (256, 128), (2, 2), 75)
    optimized = turbojpeg.encode_planes(planes, (256, 128), (2, 2), 75, optimize=True)
    progressive = turbojpeg.encode_planes(planes, (256, 128), (2, 2), 75, progressive=True)
    assert len(progressive) < len(optimized) < len(plain)
    assert b"\xff\xc2" in progressive and b"\xff\xc2" not in optimized  # SOF2: progressive
    pixels = [Image.open(io.BytesIO(data)).convert("RGB").tobytes() for data in (plain, optimized)]
    assert pixels[0] == pixels[1]  # only the entropy coding differs


def test_switching_settings_back_and_forth_keeps_the_output_right() -> None:
    """One thread encoding with and without optimized tables (libjpeg-turbo 3.0 corrupted that)."""
    planes = _planes_of(photo_like(128, 64, seed=4))
    pixels = [
        Image.open(io.BytesIO(turbojpeg.encode_planes(planes, (128, 64), (2, 2), 75, optimize=on)))
        .convert("RGB")
        .tobytes()
        for on in (False, True, False, True)
    ]
    assert pixels == [pixels[0]] * 4


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_a_reduced_planar_decode_matches_the_reduced_decode_pillow_makes(scale: int) -> None:
    data = jpeg(photo_like(803, 597, seed=3))  # 4:2:0, odd sizes
    size, buffers = turbojpeg.decode_planes(data, turbojpeg.read_header(data), scale=scale)
    assert size == (-(-803 // scale), -(-597 // scale))
    (luma_w, luma_h), chroma, _ = turbojpeg.plane_sizes(*size, (2, 2), 3)
    assert [len(buffer) for buffer in buffers] == [luma_w * luma_h, *[chroma[0] * chroma[1]] * 2]
    luma = Image.frombuffer("L", (luma_w, luma_h), bytes(buffers[0]), "raw", "L", 0, 1)
    drafted = Image.open(io.BytesIO(data))
    drafted.draft("RGB", (803 // scale, 597 // scale))
    expected = drafted.convert("YCbCr").getchannel(0)
    assert expected.size == size
    assert psnr(luma.crop((0, 0, *size)).convert("RGB"), expected.convert("RGB")) >= 45


def test_a_full_decode_after_a_reduced_one_is_full_size() -> None:
    """The scaling factor is per handle: a reduced decode must not shrink the next one."""
    data = jpeg(photo_like(320, 240, seed=4))
    header = turbojpeg.read_header(data)
    assert turbojpeg.decode_planes(data, header, scale=4)[0] == (80, 60)
    assert turbojpeg.decode_planes(data, header)[0] == (320, 240)


def test_a_scale_the_dct_cannot_make_is_refused() -> None:
    data = jpeg(photo_like(64, 48, seed=5))
    with pytest.raises(ValueError, match="1/3"):
        turbojpeg.decode_planes(data, turbojpeg.read_header(data), scale=3)
