"""The listing is read as a stream; bad targets are dropped and counted, a bad document refused."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iiif_server.lookup.listing import ListingCounts, ListingError, read_listing, redirect_target


def read(document: bytes) -> tuple[dict[str, dict[str, str]], ListingCounts]:
    counts = ListingCounts()
    entries = {key: dict(urls) for key, urls in read_listing(io.BytesIO(document), counts)}
    return entries, counts


def test_ids_with_their_urls_and_nulls_left_out() -> None:
    document = {
        "fairerthandayfo00hugggoog": {
            "edit": "http://editor.example/fairer/edit/",
            "epub": "http://render.example/fairer.epub",
        },
        "bijdragenototde00valegoog": {"edit": "http://editor.example/kauri/edit/", "epub": None},
        "nothing": {},
    }
    entries, counts = read(json.dumps(document).encode())
    assert entries == {
        "fairerthandayfo00hugggoog": document["fairerthandayfo00hugggoog"],
        "bijdragenototde00valegoog": {"edit": "http://editor.example/kauri/edit/"},
        "nothing": {},
    }
    assert (counts.ids, counts.urls, counts.dropped_urls, counts.dropped_ids) == (3, 3, 0, 0)


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "/relative/path",
        "//host.example/no-scheme",
        "ftp://host.example/file",
        "http://",
        "http:///path-only",
        "http://host.example/a\nLocation: http://evil.example/",
        "http://host.example/\x00",
        "http://host.example/\x85",
        "data:text/html,<script>",
        42,
        ["http://host.example/"],
        {"url": "http://host.example/"},
        "http://[::1/broken",
    ],
)
def test_unsafe_targets_are_dropped_and_counted(target: Any) -> None:
    good = "https://editor.example/ok/edit/"
    entries, counts = read(json.dumps({"book": {"edit": good, "epub": target}}).encode())
    assert entries == {"book": {"edit": good}}
    assert counts.dropped_urls == 1 and counts.urls == 1


def test_empty_and_overlong_ids_are_dropped_and_counted() -> None:
    document = {"": {"edit": "http://e.example/"}, "x" * 256: {}, "y" * 255: {}}
    entries, counts = read(json.dumps(document).encode())
    assert list(entries) == ["y" * 255]
    assert counts.dropped_ids == 2


def test_non_ascii_targets_travel_percent_encoded() -> None:
    assert redirect_target("https://editor.example/b\u00fccher /x") == (
        "https://editor.example/b%C3%BCcher%20/x"
    )
    assert redirect_target("HTTPS://Editor.Example:8443/a?b=c#d") == (
        "HTTPS://Editor.Example:8443/a?b=c#d"
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"[1, 2, 3]", "wrong shape"),
        (b'"a string"', "wrong shape"),
        (b"", "invalid JSON"),
        (b'{"book": "http://e.example/"}', "wrong shape"),
        (b'{"book": ["http://e.example/"]}', "wrong shape"),
        (b'{"book": {"edit": "http://e.example/"}', "invalid JSON"),  # cut short
        (b'{"book": {"edit": "http://e.exa', "invalid JSON"),
        (b"{this is not json}", "invalid JSON"),
        (b'{"a": {}} trailing', "invalid JSON"),
    ],
)
def test_a_bad_document_is_refused_whole(document: bytes, reason: str) -> None:
    with pytest.raises(ListingError, match=reason):
        read(document)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.one_of(_json.map(lambda value: json.dumps(value).encode()), st.binary(max_size=80)))
def test_any_document_gives_safe_targets_or_a_listing_error(document: bytes) -> None:
    try:
        entries, counts = read(document)
    except ListingError:
        return
    assert counts.ids >= len(entries)  # duplicate keys collapse in the dict
    for urls in entries.values():
        for url in urls.values():
            assert url.lower().startswith(("http://", "https://"))
            assert all(0x21 <= ord(char) <= 0x7E for char in url)
            assert redirect_target(url) == url  # a kept target is a fixed point
