"""`iiif-server lookup sync` and `lookup get`, on the files a running server would map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iiif_server.cli import main
from tests.lookup.conftest import SCHEME
from tests.lookup.fake_editor import FakeEditor


def config(tmp_path: Path, editor: FakeEditor) -> str:
    lookup = {
        "listing_url": editor.template,
        "schemes": [SCHEME],
        "fallback": {"edit": "https://e.example/new/{id}"},
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps({"cache_path": str(tmp_path / "cache"), "lookup": lookup}))
    return str(path)


def test_sync_prints_what_changed_and_get_answers(
    editor: FakeEditor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, editor)
    assert main(["lookup", "get", SCHEME, "edit", "x", "--config", path]) == 1
    assert "503" in capsys.readouterr().err

    assert main(["lookup", "sync", "--config", path]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{SCHEME}: changed: 2 ids: 2 added, 0 removed, 0 changed; 0 URLs")
    assert (
        "  added bijdragenototde00valegoog: {'edit': 'http://editor.example/kauri/edit/'}"
        in printed
    )

    assert main(["lookup", "sync", "--config", path]) == 0
    assert capsys.readouterr().out == f"{SCHEME}: unchanged (2 ids)\n"

    editor.listings[SCHEME] = {
        "bijdragenototde00valegoog": {"edit": "http://editor.example/kauri2/edit/"},
        "new": {"epub": "javascript:x"},
    }
    assert main(["lookup", "sync", "--config", path]) == 0
    printed = capsys.readouterr().out
    assert (
        f"{SCHEME}: changed: 2 ids: 1 added, 1 removed, 1 changed; 1 URLs and 0 ids dropped"
        in printed
    )
    assert "  removed fairerthandayfo00hugggoog" in printed

    editor.behaviour = "500"
    assert main(["lookup", "sync", "--config", path]) == 1
    assert capsys.readouterr().out == (
        f"{SCHEME}: failed: the editor answered HTTP 500 (still answering: 2 ids)\n"
    )

    assert (
        main(["lookup", "get", SCHEME, "edit", "bijdragenototde00valegoog", "--config", path]) == 0
    )
    assert capsys.readouterr().out == "http://editor.example/kauri2/edit/\n"
    assert main(["lookup", "get", SCHEME, "epub", "new", "--config", path]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["lookup", "get", SCHEME, "edit", "a/b", "--config", path]) == 0
    assert capsys.readouterr().out == "https://e.example/new/a%2Fb\n"


def test_lookup_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    off = tmp_path / "off.yml"
    off.write_text("lookup: {listing_url: null}\n")
    assert main(["lookup", "sync", "--config", str(off)]) == 2
    assert "lookup is off" in capsys.readouterr().err


def test_the_same_urls_in_another_order_are_no_change(
    editor: FakeEditor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report compares what each id's modes point to, not the order they are listed in."""
    path = config(tmp_path, editor)
    edit, epub = "http://editor.example/a/edit/", "http://editor.example/a.epub"
    editor.listings[SCHEME] = {
        "a": {"edit": edit, "epub": epub},
        "b": {"edit": "http://editor.example/b/edit/"},
    }
    assert main(["lookup", "sync", "--config", path]) == 0
    assert f"{SCHEME}: changed: 2 ids: 2 added, 0 removed, 0 changed" in capsys.readouterr().out
    editor.listings[SCHEME] = {
        "a": {"epub": epub, "edit": edit},
        "b": {"edit": "http://editor.example/b2/edit/"},
    }
    assert main(["lookup", "sync", "--config", path]) == 0
    printed = capsys.readouterr().out
    assert f"{SCHEME}: changed: 2 ids: 0 added, 0 removed, 1 changed" in printed
    assert "  changed b: {'edit': 'http://editor.example/b2/edit/'}" in printed
