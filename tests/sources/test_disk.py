"""The disk source never reads outside its type's folder."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from iiif_server.errors import BadRequest, NotFound
from iiif_server.sources.disk import DiskSource


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "sources" / "books"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"a")
    (folder / "noext").write_bytes(b"n")
    (folder / "b.tif").write_bytes(b"b")
    (folder / "sub" / "deeper" / "c.png").write_bytes(b"c")
    (tmp_path / "sources" / "secret.jpg").write_bytes(b"secret")
    (tmp_path / "sources" / "books-other").mkdir()
    (tmp_path / "sources" / "books-other" / "x.jpg").write_bytes(b"x")
    return folder


def test_finds_files_subfolders_and_missing_extensions(root: Path) -> None:
    source = DiskSource(root)
    assert source.find("a.jpg").path.name == "a.jpg"
    assert source.find("a").path.name == "a.jpg"
    assert source.find("b").path.name == "b.tif"
    assert source.find("noext").path.name == "noext"
    assert source.find("sub/deeper/c").path.name == "c.png"


def test_identity_changes_with_the_file(root: Path) -> None:
    source = DiskSource(root)
    before = source.find("a.jpg").identity
    (root / "a.jpg").write_bytes(b"changed")
    assert source.find("a.jpg").identity != before


@pytest.mark.parametrize(
    "name",
    ["../secret.jpg", "../secret", "sub/../../secret.jpg", "/etc/passwd", "..", ".", "",
     "sub//deeper/c.png", "sub/./deeper/c.png", "../books-other/x.jpg", "missing.jpg", "sub",
     "a.jpg/", "sub/deeper/../../a.jpg"],
)  # fmt: skip
def test_refuses_everything_outside_or_absent(root: Path, name: str) -> None:
    with pytest.raises(NotFound):
        DiskSource(root).find(name)


def test_nul_bytes_are_a_bad_request(root: Path) -> None:
    with pytest.raises(BadRequest):
        DiskSource(root).find("a.jpg\x00.png")


def test_symlinks_leading_out_are_refused(root: Path) -> None:
    (root / "link.jpg").symlink_to(root.parent / "secret.jpg")
    (root / "up").symlink_to(root.parent)
    (root / "inside.jpg").symlink_to(root / "a.jpg")
    source = DiskSource(root)
    with pytest.raises(NotFound):
        source.find("link.jpg")
    with pytest.raises(NotFound):
        source.find("up/secret.jpg")
    with pytest.raises(NotFound):
        source.find("link")  # not even through the extension search
    assert source.find("inside.jpg").path.name == "a.jpg"  # a link inside the root is fine


def test_a_root_that_is_itself_a_symlink_works(tmp_path: Path, root: Path) -> None:
    (tmp_path / "alias").symlink_to(root)
    assert DiskSource(tmp_path / "alias").find("a").path.name == "a.jpg"


def test_a_remembered_name_still_sees_a_deleted_file(root: Path) -> None:
    source = DiskSource(root)
    assert source.find("a").path.name == "a.jpg"
    (root / "a.jpg").unlink()
    with pytest.raises(NotFound):
        source.find("a")


def test_a_link_turned_outside_after_a_lookup_never_reads_outside(root: Path) -> None:
    (root / "link.jpg").symlink_to(root / "a.jpg")
    source = DiskSource(root)
    assert source.find("link.jpg").path == (root / "a.jpg").resolve()
    (root / "link.jpg").unlink()
    (root / "link.jpg").symlink_to(root.parent / "secret.jpg")
    found = None
    with contextlib.suppress(NotFound):
        found = source.find("link.jpg")
    # Either the name is looked up again (refused) or the file inside the root is read.
    assert found is None or found.path == (root / "a.jpg").resolve()
