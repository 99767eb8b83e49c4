"""The SQLite store: memory in front, expiry, the row budget, and a corrupt file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from iiif_server.covers.store import MemoryStore, SqliteStore, make_store

pytestmark = pytest.mark.gen_test(timeout=20)


class Clock:
    def __init__(self) -> None:
        self.now = 5_000_000.0

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT id, provider, url FROM covers").fetchall())


async def test_entries_reach_the_file_and_come_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "c" / "covers.sqlite3"
    store = SqliteStore(path, memory_entries=10, max_rows=100)
    await store.start()
    await store.put_many({("gb", "1"): ("http://a/1", 60), ("ol", "1"): (None, 60)})
    assert store.peek([("gb", "1"), ("ol", "1"), ("gb", "2")]) == {
        ("gb", "1"): "http://a/1",
        ("ol", "1"): None,
    }
    await store.close()
    assert rows(path) == [("1", "gb", "http://a/1"), ("1", "ol", None)]

    again = SqliteStore(path, memory_entries=10, max_rows=100)
    await again.start()
    try:
        assert again.peek([("gb", "1")]) == {}  # memory starts empty
        assert await again.get_many([("gb", "1"), ("ol", "1"), ("gb", "2")]) == {
            ("gb", "1"): "http://a/1",
            ("ol", "1"): None,
        }
        assert again.peek([("gb", "1")]) == {("gb", "1"): "http://a/1"}  # now in memory
    finally:
        await again.close()


async def test_expired_entries_are_gone_from_memory_and_file(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "s.sqlite3", memory_entries=10, max_rows=100, clock=clock)
    await store.start()
    try:
        await store.put_many({("gb", "1"): ("http://a/1", 10), ("gb", "2"): ("http://a/2", 100)})
        clock.now += 11
        assert store.peek([("gb", "1"), ("gb", "2")]) == {("gb", "2"): "http://a/2"}
        assert await store.get_many([("gb", "1")]) == {}
    finally:
        await store.close()


async def test_memory_is_bounded_and_the_file_answers_what_it_dropped(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3", memory_entries=2, max_rows=100)
    await store.start()
    try:
        await store.put_many({("gb", str(i)): (f"http://a/{i}", 60) for i in range(5)})
        assert len(store.peek([("gb", str(i)) for i in range(5)])) == 2
        assert len(await store.get_many([("gb", str(i)) for i in range(5)])) == 5
    finally:
        await store.close()


async def test_purge_keeps_the_file_within_its_row_budget(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path, memory_entries=10, max_rows=3, clock=clock)
    await store.start()
    try:
        await store.put_many({("gb", "old"): ("http://a/old", 5)})
        # Longer lives last longer: the soonest to expire go first.
        await store.put_many({("gb", str(i)): (f"http://a/{i}", 100 + i) for i in range(4)})
        clock.now += 6  # "old" has expired
        await store._run(store.purge)
    finally:
        await store.close()
    assert [row[0] for row in rows(path)] == ["1", "2", "3"]


async def test_a_corrupt_file_leaves_a_working_memory_cache(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteStore(path, memory_entries=10, max_rows=100)
    await store.start()
    try:
        await store.put_many({("gb", "1"): ("http://a/1", 60)})
        assert await store.get_many([("gb", "1")]) == {("gb", "1"): "http://a/1"}
    finally:
        await store.close()


async def test_the_default_store_is_a_file_under_the_cache_folder(tmp_path: Path) -> None:
    store = make_store("sqlite", tmp_path, memory_entries=10, max_rows=10, timeout=1.0)
    assert isinstance(store, SqliteStore) and isinstance(store, MemoryStore)
    await store.start()
    await store.close()
    assert (tmp_path / "covers" / "covers.sqlite3").is_file()


async def test_processes_sharing_the_file_see_changes_within_a_minute(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.sqlite3"
    first = SqliteStore(path, memory_entries=10, max_rows=100, clock=clock)
    second = SqliteStore(path, memory_entries=10, max_rows=100, clock=clock)
    await first.start()
    await second.start()
    try:
        await first.put_many({("gb", "1"): ("http://a/old", 86400)})
        assert await second.get_many([("gb", "1")]) == {("gb", "1"): "http://a/old"}
        await first.put_many({("gb", "1"): ("http://a/new", 86400)})  # an override
        assert second.peek([("gb", "1")]) == {("gb", "1"): "http://a/old"}
        clock.now += SqliteStore.memory_seconds + 1
        assert await second.get_many([("gb", "1")]) == {("gb", "1"): "http://a/new"}
    finally:
        await first.close()
        await second.close()
