"""Matrix parameters: parsing (every 400 names its key), resolution, the canonical form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iiif_server.errors import BadRequest
from iiif_server.resources.matrix import GRAVITIES, MODES, MatrixParams

MAX = 2500


def resolve(text: str, source: tuple[int, int], output: str = "jpg") -> str:
    return str(MatrixParams.parse(text, MAX).resolve(source, MAX, 85, output))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("img:w=10", "v"),
        ("v=1;img:w=10", "v"),
        ("v=0;img:w=0", "img:w"),
        ("v=0;img:w=abc", "img:w"),
        ("v=0;img:w=-5", "img:w"),
        ("v=0;img:w=2501", "img:w"),
        ("v=0;img:h=1e3", "img:h"),
        ("v=0;img:h=", "img:h"),
        ("v=0;img:m=zoom", "img:m"),
        ("v=0;img:g=up", "img:g"),
        ("v=0;img:q=0", "img:q"),
        ("v=0;img:q=101", "img:q"),
        ("v=0;img:x=1", "img:x"),
        ("v=0;img:w", "img:w"),
        ("v=0;img:w=1;img:w=2", "img:w"),
    ],
)
def test_every_bad_parameter_is_a_400_naming_it(text: str, key: str) -> None:
    with pytest.raises(BadRequest) as raised:
        MatrixParams.parse(text, MAX)
    assert raised.value.message.startswith(f"{key}:")


def test_lenient_where_old_clients_are() -> None:
    assert MatrixParams.parse("v=0;img:w=200.0;img:h=99.9;", MAX) == MatrixParams(200, 99)
    assert MatrixParams.parse("v=0;;img:m=SCALE;img:g=NE;other=1", MAX) == MatrixParams(
        None, None, "scale", "ne"
    )


def test_canonical_form_of_the_contract() -> None:
    text = "v=0;img:w=140;img:h=100;img:m=crop;img:g=nw"
    assert resolve(text, (400, 600)) == "img:g=nw;img:h=100;img:m=crop;img:q=85;img:w=140;v=0"


def test_modes_resolve_to_their_sizes() -> None:
    assert resolve("v=0;img:w=200;img:h=200", (400, 600)).count("img:w=133;") == 1
    assert "img:h=200;" in resolve("v=0;img:w=200;img:h=200", (400, 600))
    # scale never enlarges; scale! (the default) does.
    assert "img:h=600;img:m=scale;" in resolve("v=0;img:w=1000;img:h=1000;img:m=scale", (400, 600))
    assert "img:h=1000;img:m=scale!;" in resolve("v=0;img:w=1000;img:h=1000", (400, 600))
    assert "img:h=50;img:m=stretch;" in resolve("v=0;img:w=300;img:h=50;img:m=stretch", (400, 600))
    # One side given: the other follows the aspect ratio, in every mode.
    for mode in MODES:
        assert "img:h=300;" in resolve(f"v=0;img:w=200;img:m={mode}", (400, 600))
    # Gravity appears for crop only; img:q only matters for lossy outputs.
    assert "img:g" not in resolve("v=0;img:w=10;img:g=n", (400, 600))
    assert "img:q=85;" in resolve("v=0;img:w=10;img:q=20", (400, 600), "png")
    assert "img:q=20;" in resolve("v=0;img:w=10;img:q=20", (400, 600), "webp")


def test_no_size_is_the_source_size_within_max_dimension() -> None:
    assert "img:h=600;" in resolve("v=0", (400, 600))
    assert "img:h=2500;img:m=scale!;img:q=85;img:w=1250;" in resolve("v=0", (3000, 6000))


def test_crop_region_follows_gravity() -> None:
    params = MatrixParams.parse("v=0;img:w=100;img:h=100;img:m=crop;img:g=se", MAX)
    assert params.resolve((400, 200), MAX, 85, "jpg").region == (200.0, 0.0, 400.0, 200.0)
    params = MatrixParams.parse("v=0;img:w=100;img:h=100;img:m=crop;img:g=n", MAX)
    assert params.resolve((200, 400), MAX, 85, "jpg").region == (0.0, 0.0, 200.0, 200.0)


@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.one_of(st.none(), st.integers(1, MAX)),
    st.one_of(st.none(), st.integers(1, MAX)),
    st.sampled_from(MODES),
    st.sampled_from(GRAVITIES),
)
def test_canonical_parameters_are_a_fixed_point(
    sw: int, sh: int, w: int | None, h: int | None, mode: str, gravity: str
) -> None:
    text = f"v=0;img:m={mode};img:g={gravity}"
    text += f";img:w={w}" if w else ""
    text += f";img:h={h}" if h else ""
    first = MatrixParams.parse(text, MAX).resolve((sw, sh), MAX, 85, "jpg")
    again = MatrixParams.parse(str(first), MAX).resolve((sw, sh), MAX, 85, "jpg")
    assert again == first
    assert 1 <= first.width <= max(MAX, sw) and 1 <= first.height <= max(MAX, sh)


@given(st.text(max_size=80))
def test_any_text_is_parameters_or_a_400(text: str) -> None:
    try:
        MatrixParams.parse(text, MAX)
    except BadRequest as error:
        assert ":" in error.message
