"""Plane buffers made ahead: the next decode of the same sizes uses them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from iiif_server.imaging import spare, turbojpeg
from iiif_server.imaging.decode import decode
from iiif_server.imaging.planes import Planes
from iiif_server.imaging.probe import probe

from .images import MAX_PIXELS, noisy, psnr


@pytest.fixture(autouse=True)
def empty() -> Iterator[None]:
    spare.clear()
    yield
    spare.clear()


def test_the_spare_sets_serve_the_next_requests_of_the_same_sizes() -> None:
    first = spare.take([6, 3, 3])
    spare.refill()
    ready = list(spare._spare)
    assert len(ready) == spare.SETS == 2  # a worker's share of sessions starting together
    assert all(buffers is not first for buffers in ready)
    taken = [spare.take([6, 3, 3]) for _ in ready]
    assert sorted(map(id, taken)) == sorted(map(id, ready))  # each used once...
    assert spare._spare == []  # ...and gone
    assert id(spare.take([6, 3, 3])) not in map(id, taken)  # then new buffers
    assert list(map(len, spare.take([8, 4, 4]))) == [8, 4, 4]  # other sizes: new buffers


def test_refill_makes_buffers_for_the_last_sizes_only() -> None:
    spare.refill()
    assert spare._spare == []  # nothing decoded yet: nothing to guess
    spare.take([4, 2, 2])
    spare.refill()
    spare.take([10, 5, 5])
    spare.refill()  # the sets of the old sizes are dropped first
    assert [list(map(len, buffers)) for buffers in spare._spare] == [[10, 5, 5]] * 2


def test_a_decode_into_the_spare_set_gives_the_same_pixels(tmp_path: Path) -> None:
    path = tmp_path / "n.jpg"
    noisy(96, 64).save(path, "JPEG", quality=90)
    info = probe(str(path), MAX_PIXELS, None, 150)
    fresh = decode(str(path), info, 1, MAX_PIXELS).image
    spare.refill()
    kept = list(spare._spare)
    again = decode(str(path), info, 1, MAX_PIXELS).image
    assert isinstance(fresh, Planes) and isinstance(again, Planes)
    assert len(spare._spare) == len(kept) - 1  # a spare set was used
    for ours, theirs in zip(fresh.planes, again.planes, strict=True):
        assert ours.tobytes() == theirs.tobytes()
    rgb = Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
    assert psnr(again.cut_image((0, 0, 96, 64), (96, 64)), rgb) > 40
    assert turbojpeg.available()
