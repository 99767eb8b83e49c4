"""A `file:` listing (the shipped sample's kind) syncs like an editor's, with the same rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from iiif_server.config import from_mapping
from iiif_server.lookup.config import LookupSettings
from iiif_server.lookup.index import Index
from iiif_server.lookup.state import index_path
from tests.lookup.conftest import BOOKS, SCHEME, sync_once

pytestmark = pytest.mark.gen_test(timeout=30)
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "lookup"


def file_settings(folder: Path, **overrides: object) -> LookupSettings:
    return LookupSettings(
        listing_url=f"file:{folder}/{{scheme}}.json",
        schemes=(SCHEME,),
        timeout=10,
        **overrides,  # type: ignore[arg-type]
    )


async def test_a_file_listing_syncs_then_is_unchanged_until_the_file_changes(
    tmp_path: Path, folder: Path
) -> None:
    listing = tmp_path / f"{SCHEME}.json"
    listing.write_text(json.dumps(BOOKS))
    settings = file_settings(tmp_path)
    assert (await sync_once(settings, folder))[0] == "changed"
    assert (await sync_once(settings, folder))[0] == "unchanged"

    listing.write_text(json.dumps({"newbook": {"edit": "https://editor.example/new/"}}))
    os.utime(listing, ns=(1, 1))  # a new mtime even within the file system's granularity
    outcome, status = await sync_once(settings, folder)
    assert outcome == "changed" and status.ids == 1
    index = Index(index_path(folder, SCHEME))
    try:
        assert index.lookup("newbook") == {"edit": "https://editor.example/new/"}
    finally:
        index.close()


async def test_a_missing_or_oversized_file_changes_nothing(tmp_path: Path, folder: Path) -> None:
    outcome, status = await sync_once(file_settings(tmp_path), folder)
    assert outcome == "failed" and "cannot read the listing" in str(status.last_error)

    (tmp_path / f"{SCHEME}.json").write_text(json.dumps(BOOKS))
    outcome, status = await sync_once(file_settings(tmp_path, max_listing_bytes=20), folder)
    assert outcome == "failed" and "max_listing_bytes" in str(status.last_error)
    assert not index_path(folder, SCHEME).exists()


async def test_the_shipped_sample_is_what_the_defaults_read(folder: Path) -> None:
    default = from_mapping({}).lookup
    assert default.url(SCHEME) == "file:data/lookup/archive.org.json"
    settings = file_settings(SAMPLE)
    outcome, status = await sync_once(settings, folder)
    assert outcome == "changed" and status.dropped_urls == 0
    index = Index(index_path(folder, SCHEME))
    try:
        assert index.lookup("aliceinwonderlan00carr") == {
            "edit": "https://editor.example.org/books/alice/edit/",
            "epub": "https://editor.example.org/books/alice/export.epub",
        }
    finally:
        index.close()
