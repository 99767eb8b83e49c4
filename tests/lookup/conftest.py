"""Fixtures: a fake editor in a thread, lookup settings pointing at it, the folder of the index."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iiif_server.lookup.config import LookupSettings
from iiif_server.lookup.leader import sync_locked
from iiif_server.lookup.state import SchemeStatus
from tests.lookup.fake_editor import FakeEditor, fake_editor

SCHEME = "archive.org"
BOOKS: dict[str, dict[str, str | None]] = {
    "fairerthandayfo00hugggoog": {
        "edit": "http://editor.example/fairer/edit/",
        "epub": "http://render.example/fairer.epub",
    },
    "bijdragenototde00valegoog": {"edit": "http://editor.example/kauri/edit/", "epub": None},
}


@pytest.fixture
def editor() -> Iterator[FakeEditor]:
    with fake_editor() as running:
        running.listings[SCHEME] = BOOKS
        yield running


def lookup_settings(editor: FakeEditor, **overrides: Any) -> LookupSettings:
    base = LookupSettings(listing_url=editor.template, schemes=(SCHEME,), timeout=5)
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "cache" / "lookup"
    path.mkdir(parents=True)
    return path


async def sync_once(settings: LookupSettings, folder: Path) -> tuple[str, SchemeStatus]:
    return (await sync_locked(settings, folder, [SCHEME]))[SCHEME]
