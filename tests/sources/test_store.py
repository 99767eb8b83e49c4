"""The downloaded-source store on its own: adoption, identities, restarts, leftovers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from iiif_server.sources.base import SourceFile
from iiif_server.sources.fetch import Validators
from iiif_server.sources.store import SourceStore, StoredSource

URL = "https://assets.example.org/a.jpg"


def put(store: SourceStore, url: str, data: bytes, folder: str = "museum") -> StoredSource:
    temp = store.temp_path(folder, url)
    temp.write_bytes(data)
    return store.adopt(folder, url, temp, Validators('"e1"', "Mon, 01 Jan 2024"))


def test_adopted_sources_survive_a_restart_with_their_validators(tmp_path: Path) -> None:
    store = SourceStore(tmp_path, ["museum", "partner"], 10_000)
    store.load()
    entry = put(store, URL, b"x" * 100)
    put(store, URL, b"y" * 50, folder="partner")
    assert entry.file.path.parent.parent == tmp_path / "museum"
    again = SourceStore(tmp_path, ["museum", "partner"], 10_000)
    again.load()
    found = again.lookup("museum", URL)
    assert found == entry
    assert found.validators == Validators('"e1"', "Mon, 01 Jan 2024")
    assert again.total_bytes == 150 and len(again) == 2


def test_each_adoption_gets_a_later_identity(tmp_path: Path) -> None:
    store = SourceStore(tmp_path, ["museum"], 10_000)
    store.load()
    identities = []
    previous = 0
    for _ in range(5):  # faster than any file system timestamp tick
        temp = store.temp_path("museum", URL)
        temp.write_bytes(b"same bytes")
        entry = store.adopt("museum", URL, temp, Validators(), previous)
        previous = entry.file.mtime_ns
        identities.append(entry.file.identity)
    assert len(set(identities)) == 5


def test_load_drops_temp_files_strays_and_inconsistent_pairs(tmp_path: Path) -> None:
    store = SourceStore(tmp_path, ["museum"], 10_000)
    store.load()
    good = put(store, URL, b"good")
    changed = put(store, "https://assets.example.org/changed.jpg", b"before")
    broken = put(store, "https://assets.example.org/broken.jpg", b"broken")
    directory = good.file.path.parent
    temp = directory / ".tmp-0011223344556677"
    temp.write_bytes(b"partial")
    os.utime(temp, (1_000_000, 1_000_000))  # long untouched: its writer is dead
    busy = directory / ".tmp-8899aabbccddeeff"
    busy.write_bytes(b"another process is writing this")
    stray = directory / ("0" * 64)
    stray.write_bytes(b"no sidecar")
    orphan = directory / ("1" * 64 + ".json")
    orphan.write_text("{}")
    changed.file.path.write_bytes(b"after, longer")  # not what its sidecar describes
    broken.file.path.with_name(broken.file.path.name + ".json").write_text("{not json")

    again = SourceStore(tmp_path, ["museum"], 10_000)
    again.load()
    assert len(again) == 1 and again.lookup("museum", URL) == good
    for gone in (temp, stray, orphan, changed.file.path, broken.file.path):
        assert not gone.exists(), gone
    assert good.file.path.exists() and busy.exists()


def test_load_evicts_down_to_the_budget_oldest_use_first(tmp_path: Path) -> None:
    store = SourceStore(tmp_path, ["museum"], 10_000)
    store.load()
    entries = [put(store, f"{URL}?{i}", b"z" * 100) for i in range(3)]
    for age, entry in zip((300, 100, 200), entries, strict=True):
        sidecar = entry.file.path.with_name(entry.file.path.name + ".json")
        os.utime(sidecar, (1_000_000 - age, 1_000_000 - age))  # last used `age` s ago
    smaller = SourceStore(tmp_path, ["museum"], 200)
    smaller.load()
    assert smaller.lookup("museum", f"{URL}?0") is None  # the least recently used
    assert smaller.lookup("museum", f"{URL}?1") is not None
    assert smaller.lookup("museum", f"{URL}?2") is not None
    assert not entries[0].file.path.exists()


def test_a_renewal_is_recorded_on_disk(tmp_path: Path) -> None:
    store = SourceStore(tmp_path, ["museum"], 10_000)
    store.load()
    entry = put(store, URL, b"data")
    renewed = store.renew(entry)
    assert renewed.fetched >= entry.fetched and renewed.file == entry.file
    sidecar = json.loads(entry.file.path.with_name(entry.file.path.name + ".json").read_text())
    assert sidecar["fetched"] == renewed.fetched


def test_front_processes_sharing_the_folders_take_up_each_others_downloads(
    tmp_path: Path,
) -> None:
    one = SourceStore(tmp_path, ["museum"], 10_000)
    two = SourceStore(tmp_path, ["museum"], 10_000)
    one.load()
    two.load()
    written = put(one, URL, b"first")
    assert two.lookup("museum", URL) == written  # found on disk, not downloaded again
    replaced = put(one, URL, b"second version")
    assert two.lookup("museum", URL) == replaced  # changed underneath: the new pair
    assert two.total_bytes == len(b"second version")
    one.forget(replaced)
    assert two.lookup("museum", URL) is None and two.total_bytes == 0


def test_purge_forgets_one_download_a_folder_or_all_and_deletes_their_files(
    tmp_path: Path,
) -> None:
    store = SourceStore(tmp_path, ["museum", "library"], 10**6)
    store.load()
    a = put(store, "https://example.org/a.jpg", b"a")
    b = put(store, "https://example.org/b.jpg", b"b")
    c = put(store, "https://example.org/c.jpg", b"c", folder="library")
    sibling = SourceStore(tmp_path, ["museum", "library"], 10**6)
    sibling.load()

    assert store.purge("museum", "https://example.org/a.jpg", files=True) == 1
    assert sibling.purge("museum", "https://example.org/a.jpg", files=False) == 1
    assert not a.file.path.exists() and b.file.path.exists()
    assert store.lookup("museum", "https://example.org/a.jpg") is None
    assert store.path_for("museum", "https://example.org/b.jpg") == b.file.path
    assert store.purge("museum", files=True) == 1
    assert not b.file.path.exists() and c.file.path.exists()
    assert store.purge(files=True) == 1
    assert not c.file.path.exists() and len(store) == 0 and store.total_bytes == 0


def test_the_etag_of_a_download_is_known_for_that_very_file_only(tmp_path: Path) -> None:
    store = SourceStore(tmp_path, ["museum"], 10_000)
    store.load()
    entry = put(store, URL, b"x" * 100)
    assert store.etag_of(entry.file) == '"e1"'
    newer = put(store, URL, b"y" * 100)
    assert store.etag_of(entry.file) is None  # replaced since: its identity is stale
    assert store.etag_of(newer.file) == '"e1"'
    assert store.etag_of(SourceFile(tmp_path / "elsewhere" / "x.jpg", 1, 2)) is None
