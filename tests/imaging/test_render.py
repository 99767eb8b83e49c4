from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bench.images import photo_like
from iiif_server import errors
from iiif_server.iiif.image import ImageInfo
from iiif_server.imaging import render as render_module
from iiif_server.imaging.decoded_cache import DecodedKey
from iiif_server.imaging.planes import Planes
from iiif_server.imaging.probe import probe
from iiif_server.imaging.render import (
    EncodeOptions,
    configure_worker,
    decoded_cache_stats,
    prepare,
    prepare_coarse,
    render,
)

from .images import (
    BLUE,
    FIXTURE,
    GREEN,
    MAX_PIXELS,
    RED,
    YELLOW,
    near,
    noisy,
    psnr,
    quadrants,
    render_bytes,
    render_image,
    request,
    save,
)


@pytest.fixture(params=["png", "jpg"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The 400x200 quadrants image, lossless and as a JPEG."""
    if request.param == "png":
        return save(quadrants(), tmp_path / "q.png")
    return save(quadrants(), tmp_path / "q.jpg", quality=95)


@pytest.mark.parametrize(
    ("region", "size"),
    [
        (None, None),
        ((0, 0, 400, 200), (100, 50)),  # thumbnail: reduced decoding for the JPEG
        ((0, 0, 400, 200), (37, 91)),  # distorted
        ((100, 50, 200, 100), (200, 100)),  # a tile at full resolution
        ((100, 50, 200, 100), (512, 256)),  # upscaling
        ((399, 199, 1, 1), (3, 3)),  # the last pixel, upscaled
        ((0, 0, 400, 200), (1, 1)),
    ],
)
def test_output_has_exactly_the_requested_size(
    source: str,
    region: tuple[int, int, int, int] | None,
    size: tuple[int, int] | None,
    worker: None,
) -> None:
    assert render_image(source, region, size).size == (size or (400, 200))


@pytest.mark.parametrize(
    ("region", "colour"),
    [((10, 10, 50, 50), RED), ((300, 20, 80, 60), GREEN), ((0, 120, 190, 80), BLUE)],
)
def test_a_region_shows_the_pixels_of_that_region(
    source: str, region: tuple[int, int, int, int], colour: tuple[int, int, int], worker: None
) -> None:
    output = render_image(source, region, (20, 20)).convert("RGB")
    assert near(output.getpixel((10, 10)), colour)
    assert len(output.getcolors() or []) < 20  # one flat colour, give or take JPEG noise


def test_a_region_straddling_quadrants_keeps_their_layout(source: str, worker: None) -> None:
    output = render_image(source, (150, 50, 100, 100), (50, 50)).convert("RGB")
    assert near(output.getpixel((5, 5)), RED)
    assert near(output.getpixel((45, 5)), GREEN)
    assert near(output.getpixel((5, 45)), BLUE)
    assert near(output.getpixel((45, 45)), YELLOW)


def corners(image: Image.Image) -> list[object]:
    rgb = image.convert("RGB")
    w, h = rgb.size
    return [rgb.getpixel(point) for point in [(5, 5), (w - 5, 5), (5, h - 5), (w - 5, h - 5)]]


@pytest.mark.parametrize(
    ("mirror", "rotation", "size", "expected"),
    [
        (False, 0, (400, 200), [RED, GREEN, BLUE, YELLOW]),
        (True, 0, (400, 200), [GREEN, RED, YELLOW, BLUE]),
        (False, 90, (200, 400), [BLUE, RED, YELLOW, GREEN]),
        (False, 180, (400, 200), [YELLOW, BLUE, GREEN, RED]),
        (False, 270, (200, 400), [GREEN, YELLOW, RED, BLUE]),
        (True, 90, (200, 400), [YELLOW, GREEN, BLUE, RED]),  # mirror first, then turn
    ],
)
def test_mirror_and_quarter_turns_clockwise(
    source: str,
    mirror: bool,
    rotation: float,
    size: tuple[int, int],
    expected: list[tuple[int, int, int]],
    worker: None,
) -> None:
    output = render_image(source, mirror=mirror, rotation=rotation)
    assert output.size == size
    assert all(near(a, e) for a, e in zip(corners(output), expected, strict=True))


def test_arbitrary_rotation_has_transparent_corners_in_png(tmp_path: Path, worker: None) -> None:
    path = save(quadrants(), tmp_path / "q.png")
    output = render_image(path, rotation=30, fmt="png")
    assert output.mode == "RGBA"
    assert abs(output.width - 447) <= 2 and abs(output.height - 373) <= 2
    assert output.getpixel((0, 0)) == (0, 0, 0, 0)
    assert output.getpixel((output.width - 1, output.height - 1)) == (0, 0, 0, 0)
    centre = output.getpixel((output.width // 2 - 30, output.height // 2 - 10))
    assert isinstance(centre, tuple) and centre[3] == 255


def test_arbitrary_rotation_has_white_corners_in_jpg(tmp_path: Path, worker: None) -> None:
    path = save(quadrants(), tmp_path / "q.png")
    output = render_image(path, rotation=45.5, fmt="jpg")
    assert output.mode == "RGB"
    assert near(output.getpixel((0, 0)), (255, 255, 255), 2)
    assert near(output.getpixel((output.width - 1, output.height - 1)), (255, 255, 255), 2)


def test_the_validator_grid_keeps_its_colours(worker: None) -> None:
    with Image.open(FIXTURE) as fixture:
        grid = fixture.convert("RGB")
    output = render_image(str(FIXTURE), (100, 200, 300, 100), (150, 50), fmt="jpg")
    assert output.size == (150, 50)
    for column in range(3):
        for row in range(1):
            expected = grid.getpixel((150 + 100 * column, 250 + 100 * row))
            assert near(output.getpixel((25 + 50 * column, 25 + 50 * row)), expected, 5)


def test_reduced_jpeg_decoding_is_close_to_an_exact_resize(tmp_path: Path, worker: None) -> None:
    source = noisy(3000, 2000)
    path = save(source, tmp_path / "noisy.jpg", quality=90)
    with Image.open(path) as decoded:
        full = decoded.convert("RGB")
    for size in [(375, 250), (700, 466)]:  # 1/8 draft exactly; 1/4 draft then resize
        exact = full.resize(size, Image.Resampling.LANCZOS)
        assert psnr(render_image(path, size=size).convert("RGB"), exact) > 32


class TestDecodedCache:
    def test_tiles_of_one_level_share_one_decode(self, tmp_path: Path, worker: None) -> None:
        path = save(quadrants(), tmp_path / "q.jpg")
        info = probe(path, MAX_PIXELS)
        for x in (0, 100, 200, 300):
            job = request(info, (x, 0, 100, 100))
            render(path, "v1", info, job, EncodeOptions(), deep_zoom=True)
        for x in (0, 200):  # the 1/2 level
            job = request(info, (x, 0, 200, 200), (100, 100))
            render(path, "v1", info, job, EncodeOptions(), deep_zoom=True)
        stats = decoded_cache_stats()
        assert (stats["misses"], stats["hits"], stats["entries"]) == (2, 4, 2)

    def test_a_small_output_of_a_big_jpeg_decodes_at_one_eighth(
        self, tmp_path: Path, worker: None
    ) -> None:
        path = save(noisy(1600, 800), tmp_path / "big.jpg")
        render_bytes(path, size=(200, 100))
        assert decoded_cache_stats()["bytes"] == 200 * 100 * 4  # RGB: 4 bytes a pixel

    def test_a_second_tile_is_cut_from_memory(self, tmp_path: Path, worker: None) -> None:
        path = tmp_path / "q.jpg"
        save(quadrants(), path)
        info = probe(str(path), MAX_PIXELS)
        job = request(info, (0, 0, 100, 100))
        render(str(path), "v1", info, job, EncodeOptions(), deep_zoom=True)
        path.unlink()  # only the decoded cache can answer now
        tile = render(str(path), "v1", info, request(info, (300, 100, 100, 100)), EncodeOptions())
        assert tile.startswith(b"\x89PNG")

    def test_a_reduced_level_is_kept_too(self, tmp_path: Path, worker: None) -> None:
        path = tmp_path / "q.png"
        save(quadrants(), path)
        info = probe(str(path), MAX_PIXELS)
        render(str(path), "v1", info, request(info, size=(100, 50)), EncodeOptions())
        path.unlink()
        other = render(str(path), "v1", info, request(info, size=(90, 45)), EncodeOptions())
        assert other.startswith(b"\x89PNG")

    def test_a_new_identity_decodes_the_file_again(self, tmp_path: Path, worker: None) -> None:
        path = tmp_path / "q.png"
        save(quadrants(), path)
        info = probe(str(path), MAX_PIXELS)
        render(str(path), "v1", info, request(info), EncodeOptions())
        save(quadrants().transpose(Image.Transpose.FLIP_LEFT_RIGHT), path)  # edited
        output = render_image(str(path), identity="v2")
        assert near(output.getpixel((5, 5)), GREEN, 0)

    def test_an_image_larger_than_the_budget_is_not_kept(
        self, tmp_path: Path, worker: None
    ) -> None:
        configure_worker(decoded_cache_bytes=400 * 200 * 4 - 1, max_pixels=MAX_PIXELS)
        path = tmp_path / "q.png"
        save(quadrants(), path)
        info = probe(str(path), MAX_PIXELS)
        render(str(path), "v1", info, request(info), EncodeOptions())
        path.unlink()
        with pytest.raises(errors.NotFound):
            render(str(path), "v1", info, request(info), EncodeOptions())

    def test_a_count_of_images_keeps_that_many_sources(self, tmp_path: Path, worker: None) -> None:
        """The seed's `image_cache_size_per_process: 1`: one image, whatever the bytes."""
        configure_worker(1 << 30, MAX_PIXELS, decoded_cache_images=1)
        paths = [save(quadrants(), tmp_path / f"{name}.png") for name in "ab"]
        for path in paths:
            info = probe(path, MAX_PIXELS)
            render(path, "v1", info, request(info, size=(100, 50)), EncodeOptions())
            render(path, "v1", info, request(info, region=(0, 0, 100, 100)), EncodeOptions())
        assert render_module._worker is not None
        cache = render_module._worker.cache
        levels = [DecodedKey(path, "v1", 0, scale) for path in paths for scale in (1, 2, 4)]
        kept = {key.path for key in levels if cache.peek(key) is not None}
        assert kept == {paths[1]} and decoded_cache_stats()["entries"] >= 2


class TestFailures:
    def test_a_source_above_the_pixel_limit_is_refused(self, tmp_path: Path, worker: None) -> None:
        configure_worker(decoded_cache_bytes=1 << 20, max_pixels=79_999)
        path = save(quadrants(), tmp_path / "q.png")
        with pytest.raises(errors.SourceTooLarge):
            render_bytes(path)

    def test_a_truncated_jpeg_is_a_source_error(self, tmp_path: Path, worker: None) -> None:
        path = tmp_path / "noisy.jpg"
        save(noisy(300, 200), path)
        info = probe(str(path), MAX_PIXELS)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        for size in [(300, 200), (75, 50)]:  # full and reduced decoding
            with pytest.raises(errors.SourceError) as raised:
                render(str(path), "v2", info, request(info, size=size), EncodeOptions())
            assert "truncated" in str(raised.value)
            assert str(tmp_path) not in str(raised.value)

    def test_garbage_is_a_source_error(self, tmp_path: Path, worker: None) -> None:
        path = tmp_path / "q.png"
        save(quadrants(), path)
        info = probe(str(path), MAX_PIXELS)
        path.write_bytes(b"garbage" * 100)
        with pytest.raises(errors.SourceError):
            render(str(path), "v2", info, request(info), EncodeOptions())

    def test_a_missing_file_is_not_found(self, tmp_path: Path, worker: None) -> None:
        path = tmp_path / "q.png"
        save(quadrants(), path)
        info = probe(str(path), MAX_PIXELS)
        path.unlink()
        with pytest.raises(errors.NotFound):
            render(str(path), "v1", info, request(info), EncodeOptions())

    def test_running_out_of_memory_is_a_source_error(
        self, tmp_path: Path, worker: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def exhausted(*args: object, **kwargs: object) -> Image.Image:
            raise MemoryError

        monkeypatch.setattr(Image.Image, "resize", exhausted)
        path = save(quadrants(), tmp_path / "q.png")
        with pytest.raises(errors.SourceError):
            render_bytes(path, size=(40, 20))

    def test_render_needs_a_configured_worker(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(render_module, "_worker", None)
        path = save(quadrants(), tmp_path / "q.png")
        with pytest.raises(RuntimeError, match="configure_worker"):
            render_bytes(path)


class TestCoarseLevels:
    """`prepare_coarse`: the first tiles of a session from a decode reduced in the DCT."""

    def test_coarse_tiles_come_from_the_reduced_decode_alone(
        self, tmp_path: Path, worker: None
    ) -> None:
        path = save(photo_like(2400, 1600, seed=7), tmp_path / "photo.jpg", quality=90)
        info = probe(path, MAX_PIXELS)
        tiles = [((0, 0, 2400, 1600), (300, 200)), ((0, 0, 2048, 1600), (512, 400))]
        prepare_coarse(path, "v1", info, 4)
        cache = render_module._worker.cache  # type: ignore[union-attr]
        level = cache.peek(DecodedKey(path, "v1", info.page, 4))
        assert level is not None and isinstance(level.image, Planes)
        assert level.image.size == (600, 400) and level.image.sampling == (2, 2)
        misses = decoded_cache_stats()["misses"]
        coarse = [render_tile(path, info, region, size) for region, size in tiles]
        assert decoded_cache_stats()["misses"] == misses  # every tile found its level
        assert cache.peek(DecodedKey(path, "v1", info.page, 1)) is None  # no full decode

        configure_worker(256 << 20, MAX_PIXELS)  # a fresh worker cuts them from the whole
        prepare(path, "v1", info)
        whole = [render_tile(path, info, region, size) for region, size in tiles]
        with Image.open(path) as source:
            full = source.convert("RGB")
        for (region, size), ours, reference in zip(tiles, coarse, whole, strict=True):
            exact = full.crop(region).resize(size, Image.Resampling.LANCZOS)
            assert psnr(ours, exact) >= psnr(reference, exact) - 0.3  # as faithful

    def test_the_whole_decode_then_stops_above_the_coarse_levels(
        self, tmp_path: Path, worker: None
    ) -> None:
        path = save(photo_like(1600, 1200, seed=8), tmp_path / "photo.jpg")
        info = probe(path, MAX_PIXELS)
        prepare(path, "v1", info, 2)
        cache = render_module._worker.cache  # type: ignore[union-attr]
        scales = {scale for scale in (1, 2, 4, 8) if cache.peek(DecodedKey(path, "v1", 0, scale))}
        assert scales == {1, 2}

    def test_a_source_without_planes_is_decoded_by_pillow_at_that_level(
        self, tmp_path: Path, worker: None
    ) -> None:
        path = save(photo_like(800, 600, seed=9).convert("CMYK"), tmp_path / "cmyk.jpg")
        info = probe(path, MAX_PIXELS)
        prepare_coarse(path, "v1", info, 4)
        level = render_module._worker.cache.peek(  # type: ignore[union-attr]
            DecodedKey(path, "v1", info.page, 4)
        )
        assert level is not None and level.scale == 4 and not isinstance(level.image, Planes)


def render_tile(
    path: str, info: ImageInfo, region: tuple[int, int, int, int], size: tuple[int, int]
) -> Image.Image:
    """A JPEG tile of a zoom session, decoded."""
    job = request(info, region, size, fmt="jpg")
    tile = render(path, "v1", info, job, EncodeOptions(), deep_zoom=True)
    return Image.open(io.BytesIO(tile)).convert("RGB")
