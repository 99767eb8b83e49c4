"""Shared names: the same on every node, grouped by type and source for purges."""

from __future__ import annotations

from pathlib import Path

from iiif_server.shared.keys import SharedNames


def test_sources_inside_the_nodes_folders_are_named_relative_to_them(tmp_path: Path) -> None:
    a = SharedNames(tmp_path / "a" / "sources", tmp_path / "a" / "cache")
    b = SharedNames(tmp_path / "b" / "sources", tmp_path / "b" / "cache")
    for folder in ("sources", "cache"):
        path_a = str(tmp_path / "a" / folder / "museum" / "x.jpg")
        path_b = str(tmp_path / "b" / folder / "museum" / "x.jpg")
        assert a.source(path_a) == b.source(path_b)
        key_a, key_b = (
            f"2|{path_a}|1-2|full/max/0/default.jpg",
            f"2|{path_b}|1-2|full/max/0/default.jpg",
        )
        assert a.derivative("museum", path_a, key_a) == b.derivative("museum", path_b, key_b)
    assert a.source("/elsewhere/x.jpg") == "/elsewhere/x.jpg"


def test_derivatives_of_a_source_share_its_prefix_and_its_types(tmp_path: Path) -> None:
    names = SharedNames(tmp_path / "sources", tmp_path / "cache")
    path = str(tmp_path / "sources" / "sample" / "x.jpg")
    one = names.derivative("sample", path, f"2|{path}|1|full/max/0/default.jpg")
    two = names.derivative("sample", path, f"2|{path}|1|full/100,/0/default.jpg")
    other = names.derivative("sample", path + "2", f"2|{path}2|1|full/max/0/default.jpg")
    assert one != two
    assert one.startswith(names.source_prefix("sample", path))
    assert two.startswith(names.source_prefix("sample", path))
    assert not other.startswith(names.source_prefix("sample", path))
    assert all(n.startswith(names.type_prefix("sample")) for n in (one, two, other))
    assert names.info(path, None, "1-2") != names.info(path, None, "1-3")  # changed file
    assert names.info(path, 2, "1-2").startswith(names.info_prefix(path))


def test_a_downloads_identity_may_be_swapped_for_one_every_node_knows(tmp_path: Path) -> None:
    a = SharedNames(tmp_path / "a", tmp_path / "ca")
    b = SharedNames(tmp_path / "b", tmp_path / "cb")
    path_a, path_b = str(tmp_path / "a" / "m" / "x"), str(tmp_path / "b" / "m" / "x")
    key_a, key_b = f"2|{path_a}|10-111|full", f"2|{path_b}|10-222|full"
    assert a.derivative("m", path_a, key_a) != b.derivative("m", path_b, key_b)
    assert a.derivative("m", path_a, key_a, ("10-111", "etag:e")) == b.derivative(
        "m", path_b, key_b, ("10-222", "etag:e")
    )
