"""Path splitting (archives, parameters, refusals) and resolution under the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iiif_server.errors import BadRequest, NotFound
from iiif_server.resources.paths import RequestPath, locate, split, transcoded


def test_plain_paths_collapse_repeated_slashes() -> None:
    assert split("//covers///a.png") == RequestPath(None, ("covers", "a.png"))
    assert split("covers/a.png").text == "covers/a.png"


def test_the_first_archive_segment_that_is_not_last_is_the_archive() -> None:
    assert split("b/book.epub/OEBPS/ch1.xhtml") == RequestPath(
        None, ("b", "book.epub"), ("OEBPS", "ch1.xhtml")
    )
    bang = split("book.EPUB!/OEBPS//ch1.xhtml")
    assert bang == RequestPath(None, ("book.EPUB",), ("OEBPS", "ch1.xhtml"), bang=True)
    assert bang.text == "book.EPUB!/OEBPS/ch1.xhtml"
    assert split("a.zip/b.zip/c.txt").segments == ("a.zip",)
    assert split("books/book.epub") == RequestPath(None, ("books", "book.epub"))


def test_parameters_are_the_first_segment() -> None:
    path = split("params;v=0;img:w=10;/covers/a.png")
    assert path.params == "v=0;img:w=10;"
    assert path.segments == ("covers", "a.png")


@pytest.mark.parametrize(
    "raw",
    ["../etc/passwd", "a/../../b", "./a", "secret.key", "a/B.KEY", "keys.key/a.txt",
     "book.epub/OEBPS/enc.key", "params;v=0/a.key", "", "///", "params;v=0"],
)  # fmt: skip
def test_refused_paths_are_not_found(raw: str) -> None:
    with pytest.raises(NotFound):
        split(raw)


def test_nul_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        split("a\0.png")


def test_transcoding_needs_an_image_and_an_output_format() -> None:
    assert transcoded("cover.png.jpg") == ("cover.png", "jpg")
    assert transcoded("cover.TIF.Webp") == ("cover.TIF", "webp")
    assert transcoded("cover.png.jpeg") == ("cover.png", "jpg")
    assert transcoded("cover.png") is None
    assert transcoded("notes.txt.jpg") is None
    assert transcoded("cover.jpg.bmp") is None


def test_locate_follows_symlinks_only_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    (root / "secret.key").write_text("k")
    (tmp_path / "outside.txt").write_text("o")
    (root / "inside").symlink_to(root / "sub" / "a.txt")
    (root / "out").symlink_to(tmp_path / "outside.txt")
    (root / "keylink").symlink_to(root / "secret.key")
    (root / "dirout").symlink_to(tmp_path)
    real = os.path.realpath(root)
    assert locate(real, ("inside",)).path == str(root / "sub" / "a.txt")
    assert locate(real, ("sub", "a.txt")).size == 1
    for segments in (("out",), ("keylink",), ("dirout", "outside.txt"), ("sub",), ("none",)):
        with pytest.raises(NotFound):
            locate(real, segments)


@given(st.text(max_size=60))
def test_any_path_splits_safely_or_is_refused(raw: str) -> None:
    try:
        path = split(raw)
    except (NotFound, BadRequest):
        return
    parts = path.segments + (path.inner or ())
    assert parts and all(p not in ("", ".", "..") and "/" not in p for p in parts)
    assert not any(p.lower().endswith(".key") for p in parts)
    assert split(path.text) == RequestPath(None, path.segments, path.inner, path.bang)
