"""The index file: what goes in comes out, for every id, across blocks; a damaged one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.lookup.index import BLOCK, CorruptIndex, Index, IndexWriter


def write(path: Path, entries: list[tuple[str, list[tuple[str, str]]]]) -> Index:
    writer = IndexWriter(path)
    for identifier, urls in entries:
        writer.add(identifier, urls)
    writer.finish({})
    return Index(path)


def entries(count: int) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (
            f"book{number:05d}goog",
            [("edit", f"https://editor.example/b{number}/edit/")]
            + ([("epub", f"https://render.example/{number:05d}.epub")] if number % 2 else []),
        )
        for number in range(count)
    ]


def test_every_id_finds_its_urls_across_several_blocks(tmp_path: Path) -> None:
    listing = entries(3 * BLOCK + 5)
    index = write(tmp_path / "a.index", listing)
    assert index.ids == len(listing)
    for identifier, urls in listing:
        assert index.lookup(identifier) == dict(urls)
    assert index.url("book00001goog", "epub") == (True, "https://render.example/00001.epub")
    assert index.url("book00000goog", "epub") == (True, None)
    assert index.url("book00000goog", "nonsense") == (True, None)
    assert index.url("unknown", "edit") == (False, None)
    assert index.lookup("book00000goo") is None and index.lookup("") is None
    assert dict(index.items()) == {identifier: dict(urls) for identifier, urls in listing}
    index.close()


def test_an_empty_listing_answers_no_for_everything(tmp_path: Path) -> None:
    index = write(tmp_path / "empty.index", [])
    assert index.ids == 0
    assert index.lookup("anything") is None
    assert list(index.items()) == []
    index.close()


def test_unicode_ids_and_the_later_of_two_duplicates(tmp_path: Path) -> None:
    index = write(
        tmp_path / "u.index",
        [
            ("B\u00fccher/1 ?#", [("edit", "http://e.example/1")]),
            ("dup", [("edit", "http://e.example/old")]),
            ("\U0001f4da", []),
            ("dup", [("edit", "http://e.example/new")]),
        ],
    )
    assert index.lookup("B\u00fccher/1 ?#") == {"edit": "http://e.example/1"}
    assert index.lookup("\U0001f4da") == {}
    assert index.lookup("dup") == {"edit": "http://e.example/new"}
    assert index.lookup("\udcff") is None  # a lone surrogate matches nothing, without raising
    assert index.ids == 3
    assert sorted(index.items()) == sorted(
        [("B\u00fccher/1 ?#", {"edit": "http://e.example/1"}), ("\U0001f4da", {}),
         ("dup", {"edit": "http://e.example/new"})]
    )  # fmt: skip
    index.close()


def test_a_cut_or_foreign_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "good.index", entries(10)).close()
    data = (tmp_path / "good.index").read_bytes()
    (tmp_path / "cut.index").write_bytes(data[: len(data) - 3])
    (tmp_path / "foreign.index").write_bytes(b"x" * len(data))
    (tmp_path / "tiny.index").write_bytes(b"IIIF")
    for name in ("cut", "foreign", "tiny"):
        with pytest.raises(CorruptIndex):
            Index(tmp_path / f"{name}.index")


def test_blocks_after_the_training_use_the_dictionary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("iiif_server.lookup.index.TRAINING_RECORDS", 2000)
    listing = entries(2500)  # the first 2000 train the dictionary, the rest use it too
    writer = IndexWriter(tmp_path / "trained.index")
    for identifier, urls in listing:
        writer.add(identifier, urls)
    writer.finish({})
    assert writer._dictionary  # trained, not the empty fallback of small listings
    index = Index(tmp_path / "trained.index")
    for identifier, urls in listing[::7]:
        assert index.lookup(identifier) == dict(urls)
    assert len(dict(index.items())) == len(listing)
    index.close()
