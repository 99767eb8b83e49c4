"""A sync replaces the listing only when a whole good one arrived; any failure changes nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from iiif_server.lookup.index import Index
from iiif_server.lookup.state import index_path, read_status
from tests.lookup.conftest import BOOKS, SCHEME, lookup_settings, sync_once
from tests.lookup.fake_editor import LAST_MODIFIED, FakeEditor

pytestmark = pytest.mark.gen_test(timeout=30)


def answers(folder: Path, identifier: str) -> dict[str, str] | None:
    index = Index(index_path(folder, SCHEME))
    try:
        return index.lookup(identifier)
    finally:
        index.close()


async def test_good_then_unchanged_then_changed(editor: FakeEditor, folder: Path) -> None:
    settings = lookup_settings(editor)
    outcome, status = await sync_once(settings, folder)
    assert outcome == "changed"
    assert (status.ids, status.urls, status.last_error) == (2, 3, None)
    assert answers(folder, "bijdragenototde00valegoog") == {
        "edit": "http://editor.example/kauri/edit/"
    }

    outcome, status = await sync_once(settings, folder)
    assert outcome == "unchanged"
    headers = editor.requests[-1][1]  # the editor answered 304: the ETag matched
    assert headers["If-None-Match"] == status.etag
    assert headers["If-Modified-Since"] == LAST_MODIFIED
    assert status.last_success == status.last_attempt

    editor.listings[SCHEME] = {"newbook": {"edit": "https://editor.example/new/edit/"}}
    outcome, status = await sync_once(settings, folder)
    assert outcome == "changed" and status.ids == 1
    assert answers(folder, "newbook") == {"edit": "https://editor.example/new/edit/"}
    assert answers(folder, "bijdragenototde00valegoog") is None
    assert editor.count(SCHEME) == 3
    assert read_status(folder)[SCHEME] == status  # what every process reads


async def test_the_first_request_is_not_conditional(editor: FakeEditor, folder: Path) -> None:
    await sync_once(lookup_settings(editor), folder)
    assert "If-None-Match" not in editor.requests[0][1]


async def test_dropped_targets_are_counted(editor: FakeEditor, folder: Path) -> None:
    editor.listings[SCHEME] = {
        "a": {"edit": "javascript:alert(1)", "epub": "https://r.example/a.epub"},
        "": {"edit": "https://e.example/"},
    }
    outcome, status = await sync_once(lookup_settings(editor), folder)
    assert outcome == "changed"
    assert (status.ids, status.dropped_urls, status.dropped_ids) == (1, 1, 1)
    assert answers(folder, "a") == {"epub": "https://r.example/a.epub"}


@pytest.mark.parametrize(
    ("behaviour", "body", "error"),
    [
        ("500", None, "HTTP 500"),
        ("good", b"<html>not a listing</html>", "invalid JSON"),
        ("good", b'{"cut": {"edit": "http://e.example/', "invalid JSON"),
        ("good", b'["a", "list"]', "wrong shape"),
        ("good", b'{"a": "http://e.example/"}', "wrong shape"),
        ("hang", None, "download failed"),
        ("truncated", None, "download failed"),
        ("oversized", None, "exceeds max_listing_bytes"),
        ("refused", None, "download failed"),
    ],
)
async def test_a_failed_sync_keeps_the_last_good_listing(
    editor: FakeEditor, folder: Path, behaviour: str, body: bytes | None, error: str
) -> None:
    settings = lookup_settings(editor, timeout=1.0, max_listing_bytes=10_000)
    assert (await sync_once(settings, folder))[0] == "changed"
    before = index_path(folder, SCHEME).read_bytes()
    editor.listings[SCHEME] = {"other": {"edit": "http://editor.example/other/"}}
    editor.behaviour, editor.body = behaviour, body
    if behaviour == "refused":
        settings = dataclasses.replace(settings, listing_url="http://127.0.0.1:1/{scheme}.json")
    outcome, status = await sync_once(settings, folder)
    assert outcome == "failed"
    assert status.last_error is not None and error in status.last_error
    assert status.last_attempt is not None and status.last_success is not None
    assert status.last_success < status.last_attempt
    assert status.ids == 2
    assert index_path(folder, SCHEME).read_bytes() == before
    assert answers(folder, "fairerthandayfo00hugggoog") == {
        k: v for k, v in BOOKS["fairerthandayfo00hugggoog"].items() if v
    }
    left = sorted(path.name for path in folder.iterdir())  # no temporary file stays behind
    assert left == ["archive.org.index", "status.json", "sync.lock"]


async def test_a_failure_before_any_listing_leaves_none(editor: FakeEditor, folder: Path) -> None:
    editor.behaviour = "500"
    outcome, status = await sync_once(lookup_settings(editor), folder)
    assert outcome == "failed" and status.last_success is None
    assert not index_path(folder, SCHEME).exists()
    assert read_status(folder)[SCHEME].last_error == "the editor answered HTTP 500"
