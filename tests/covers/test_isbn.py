"""ISBN normalisation: the forms of one book share a key; other text has none."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iiif_server.covers.isbn import cache_key, isbn10


@pytest.mark.parametrize(
    "form", ["9780415480635", "978-0-415-48063-5", "0415480639", "0-415-48063-9", " 0 415 48063 9"]
)
def test_isbn_10_13_and_hyphenated_forms_share_a_key(form: str) -> None:
    assert cache_key(form) == "9780415480635"


def test_check_digit_x_and_lower_case() -> None:
    assert cache_key("0-8044-2957-x") == cache_key("9780804429573") == "9780804429573"


def test_979_and_eans_stay_as_they_are() -> None:
    assert cache_key("979-10-90636-07-1") == "9791090636071"
    assert cache_key("4006381333931") == "4006381333931"


def test_an_isbn_10_with_a_wrong_check_digit_is_not_merged_with_another_book() -> None:
    assert cache_key("0415480630") == "0415480630"


@pytest.mark.parametrize(
    "text", ["", "abc", "12345", "97804154806351234", "isbn9780415480635", "<script>"]
)
def test_text_that_is_no_product_number_has_no_key(text: str) -> None:
    assert cache_key(text) is None


def test_isbn10_for_amazon() -> None:
    assert isbn10("9780415480635") == "0415480639"
    assert isbn10("9780804429573") == "080442957X"
    assert isbn10("9791090636071") is None  # 979 has no ISBN-10
    assert isbn10("4006381333931") is None


@given(st.text(max_size=40))
def test_any_text_gives_a_key_of_digits_or_none(text: str) -> None:
    key = cache_key(text)
    assert key is None or (key[:-1].isdigit() and (key[-1].isdigit() or key[-1] == "X"))
    if key is not None:
        assert cache_key(key) == key  # a key is its own key
