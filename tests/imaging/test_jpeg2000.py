from __future__ import annotations

import io

import pytest
from PIL import Image

from iiif_server.imaging.jpeg2000 import decomposition_levels

from .images import quadrants


@pytest.mark.parametrize("container", [False, True])
@pytest.mark.parametrize("resolutions", [1, 3, 6])
def test_decomposition_levels_come_from_the_cod_marker(container: bool, resolutions: int) -> None:
    data = io.BytesIO()
    quadrants(64, 64).save(data, "JPEG2000", num_resolutions=resolutions, no_jp2=not container)
    assert data.getvalue().startswith(b"\x00\x00\x00\x0cjP  " if container else b"\xff\x4f")
    assert decomposition_levels(data) == resolutions - 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\x4f",
        b"\xff\x4f\xff\x51\x00",
        b"\xff\x4f\xff\x51\x00\x00\xff\x52",
        b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00",
    ],
)
def test_unreadable_headers_mean_no_reduction(data: bytes) -> None:
    assert decomposition_levels(io.BytesIO(data)) == 0


def test_a_jp2_box_before_the_codestream_is_skipped() -> None:
    plain = io.BytesIO()
    quadrants(64, 64).save(plain, "JPEG2000", num_resolutions=4)
    data = plain.getvalue()
    xml = b"<x/>" * 1000
    padded = data[:12] + (8 + len(xml)).to_bytes(4, "big") + b"xml " + xml + data[12:]
    with Image.open(io.BytesIO(padded)) as check:
        assert check.size == (64, 64)
    assert decomposition_levels(io.BytesIO(padded)) == 3
