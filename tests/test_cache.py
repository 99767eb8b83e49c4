from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from iiif_server import cache_writes
from iiif_server.cache import TEMP_PREFIX, DerivativeCache, Group, Selection
from iiif_server.cache_layout import source_tag
from iiif_server.errors import SourceError


def compute_now(cache: DerivativeCache, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
    """get_or_compute, then wait for the background write, in a loop of its own."""

    async def run() -> bytes:
        data = await cache.get_or_compute(key, compute)
        await cache.flush()
        return data

    return asyncio.run(run())


KEY = "v1|disk:foo.jpg|1234-5678|0,0,512,512/256,256/0/default.jpg"


def key(n: int) -> str:
    return f"v1|disk:foo.jpg|1234-5678|full/{n},/0/default.jpg"


def make_cache(root: Path, max_bytes: int = 1_000_000, **kwargs: float) -> DerivativeCache:
    cache = DerivativeCache(root, max_bytes, **kwargs)
    cache.load()
    return cache


def cache_path(root: Path, k: str) -> Path:
    digest = hashlib.sha256(k.encode()).hexdigest()
    return root / digest[:2] / digest


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def entry_file(root: Path) -> Path:
    (path,) = stored_files(root)
    return path


def test_put_then_get_returns_the_bytes(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.put(KEY, b"jpeg bytes")

    assert cache.get(KEY) == b"jpeg bytes"
    assert cache.get(key(1)) is None
    assert len(cache) == 1
    assert cache.total_bytes == len(b"jpeg bytes")
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (1, 1)


def test_files_fan_out_over_256_directories(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.put(KEY, b"jpeg bytes")

    path = entry_file(tmp_path)
    rel = path.relative_to(tmp_path).parts
    assert len(rel) == 2
    assert len(rel[0]) == 2 and rel[1].startswith(rel[0])
    assert len(rel[1]) == 64


def test_a_new_instance_finds_the_entries_again(tmp_path: Path) -> None:
    make_cache(tmp_path).put(KEY, b"tile")

    restarted = make_cache(tmp_path)

    assert len(restarted) == 1
    assert restarted.total_bytes == 4
    assert restarted.get(KEY) == b"tile"


def test_least_recently_used_entry_is_evicted_first(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=30)
    for n in range(3):
        cache.put(key(n), bytes([n]) * 10)
    assert cache.get(key(0)) is not None  # now the most recently used

    cache.put(key(3), b"3" * 10)

    assert cache.total_bytes == 30
    assert cache.get(key(1)) is None
    assert cache.get(key(0)) == bytes([0]) * 10
    assert cache.get(key(2)) is not None
    assert cache.get(key(3)) is not None
    assert len(stored_files(tmp_path)) == 3
    assert cache.stats().evictions == 1


def test_total_stays_within_max_bytes(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=100)
    for n in range(50):
        cache.put(key(n), b"x" * (7 + n % 13))
        assert cache.total_bytes <= 100
    assert sum(p.stat().st_size for p in stored_files(tmp_path)) == cache.total_bytes


def test_an_item_larger_than_the_budget_is_not_stored(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=10)
    cache.put(key(0), b"small")

    cache.put(KEY, b"x" * 11)

    assert cache.get(KEY) is None
    assert cache.get(key(0)) == b"small"
    assert len(stored_files(tmp_path)) == 1


def test_an_oversize_computed_item_is_returned_but_not_stored(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=10)

    async def compute() -> bytes:
        return b"x" * 11

    assert compute_now(cache, KEY, compute) == b"x" * 11
    assert len(cache) == 0
    assert stored_files(tmp_path) == []


def test_load_evicts_the_oldest_files_down_to_the_budget(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    for n in range(3):
        cache.put(key(n), b"x" * 10)
    files = {n: cache_path(tmp_path, key(n)) for n in range(3)}
    os.utime(files[0], (3000, 3000))
    os.utime(files[1], (1000, 1000))
    os.utime(files[2], (2000, 2000))

    restarted = make_cache(tmp_path, max_bytes=20)

    assert restarted.total_bytes == 20
    assert not files[1].exists()
    assert restarted.get(key(1)) is None
    assert restarted.get(key(0)) is not None
    assert restarted.get(key(2)) is not None


def test_a_hit_refreshes_the_mtime_so_lru_order_survives_restart(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, touch_interval=0)
    for n in range(3):
        cache.put(key(n), b"x" * 10)
    for n in range(3):
        os.utime(cache_path(tmp_path, key(n)), (1000 + n, 1000 + n))
    restarted = make_cache(tmp_path, touch_interval=0)

    assert restarted.get(key(0)) is not None

    assert cache_path(tmp_path, key(0)).stat().st_mtime > 2000
    after_second_restart = make_cache(tmp_path, max_bytes=20)
    assert after_second_restart.get(key(0)) is not None
    assert after_second_restart.get(key(1)) is None


def test_a_hit_within_the_touch_interval_leaves_the_mtime_alone(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, touch_interval=600)
    cache.put(KEY, b"tile")
    path = entry_file(tmp_path)
    os.utime(path, (1000, 1000))

    assert cache.get(KEY) == b"tile"

    assert path.stat().st_mtime == 1000


def test_load_removes_leftover_temp_files_and_never_serves_them(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.put(KEY, b"tile")
    final = entry_file(tmp_path)
    leftover = final.parent / f"{TEMP_PREFIX}deadbeef"
    leftover.write_bytes(b"half a ti")
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    in_progress = final.parent / f"{TEMP_PREFIX}0badcafe"  # a sibling process writing now
    in_progress.write_bytes(b"half a ti")
    final.unlink()

    restarted = make_cache(tmp_path)

    assert not leftover.exists()
    assert in_progress.exists()
    assert len(restarted) == 0
    assert restarted.get(KEY) is None


def test_processes_sharing_a_root_find_each_others_entries(tmp_path: Path) -> None:
    first = make_cache(tmp_path, max_bytes=30)
    second = make_cache(tmp_path, max_bytes=30)
    first.put(KEY, b"written by the first")

    assert second.get(KEY) == b"written by the first"
    assert len(second) == 1 and second.total_bytes == 20
    second.put(key(1), b"0123456789abcd")  # over its budget: evicts the adopted entry
    assert second.total_bytes <= 30
    assert first.get(KEY) is None  # gone from disk, so a miss for the first too


def test_load_discards_empty_files(tmp_path: Path) -> None:
    make_cache(tmp_path).put(KEY, b"tile")
    entry_file(tmp_path).write_bytes(b"")

    restarted = make_cache(tmp_path)

    assert restarted.get(KEY) is None
    assert stored_files(tmp_path) == []


def test_a_file_deleted_underneath_is_a_miss(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.put(KEY, b"tile")
    entry_file(tmp_path).unlink()

    assert cache.get(KEY) is None
    assert len(cache) == 0
    assert cache.total_bytes == 0


def test_an_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.put(KEY, b"tile")
    path = entry_file(tmp_path)
    path.unlink()
    path.mkdir()  # readable by no one, root included

    assert cache.get(KEY) is None
    assert len(cache) == 0


def test_a_file_changed_underneath_is_a_miss(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.put(KEY, b"tile")
    entry_file(tmp_path).write_bytes(b"tile and more")

    assert cache.get(KEY) is None
    assert cache.total_bytes == 0


def test_put_recreates_a_cache_directory_removed_underneath(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = make_cache(root)
    cache.put(key(0), b"old")
    shutil.rmtree(root)

    cache.put(KEY, b"tile")

    assert cache.get(KEY) == b"tile"
    assert cache.get(key(0)) is None


def test_a_failed_replace_leaves_no_file_and_still_returns_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(tmp_path)

    def replace_fails(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    async def compute() -> bytes:
        return b"tile"

    monkeypatch.setattr(os, "replace", replace_fails)
    assert compute_now(cache, KEY, compute) == b"tile"
    monkeypatch.undo()

    assert stored_files(tmp_path) == []
    assert cache.get(KEY) is None
    assert cache.stats().write_errors == 1
    assert "cannot store" in caplog.text


def test_a_disk_full_mid_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(tmp_path)
    real_write = os.write

    def write_half_then_fill_the_disk(fd: int, data: bytes) -> int:
        if len(data) > 4:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write_half_then_fill_the_disk)
        cache.put(KEY, b"0123456789")

    assert stored_files(tmp_path) == []
    assert cache.get(KEY) is None
    cache.put(KEY, b"0123456789")  # the disk has room again
    assert cache.get(KEY) == b"0123456789"


def test_concurrent_identical_requests_compute_once(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)

    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        calls = 0

        async def compute() -> bytes:
            nonlocal calls
            calls += 1
            started.set()
            await release.wait()
            return b"tile"

        callers = [asyncio.ensure_future(cache.get_or_compute(KEY, compute)) for _ in range(5)]
        await started.wait()
        assert cache.stats().in_flight == 1
        release.set()

        assert await asyncio.gather(*callers) == [b"tile"] * 5
        assert calls == 1
        assert await cache.get_or_compute(KEY, compute) == b"tile"  # a hit now
        assert calls == 1
        assert cache.stats().in_flight == 0
        await cache.flush()

    asyncio.run(scenario())


def test_a_failure_reaches_every_waiter_and_is_not_remembered(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)

    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        calls = 0

        async def fail_once() -> bytes:
            nonlocal calls
            calls += 1
            if calls == 1:
                started.set()
                await release.wait()
                raise SourceError("truncated source")
            return b"tile"

        callers = [asyncio.ensure_future(cache.get_or_compute(KEY, fail_once)) for _ in range(3)]
        await started.wait()
        release.set()

        results = await asyncio.gather(*callers, return_exceptions=True)
        assert [str(r) for r in results] == ["truncated source"] * 3
        assert all(isinstance(r, SourceError) for r in results)
        assert len(cache) == 0

        assert await cache.get_or_compute(KEY, fail_once) == b"tile"
        assert calls == 2
        assert cache.get(KEY) == b"tile"
        await cache.flush()

    asyncio.run(scenario())


def test_a_caller_going_away_does_not_cancel_the_shared_computation(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)

    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def compute() -> bytes:
            started.set()
            await release.wait()
            return b"tile"

        first = asyncio.ensure_future(cache.get_or_compute(KEY, compute))
        second = asyncio.ensure_future(cache.get_or_compute(KEY, compute))
        await started.wait()
        first.cancel()
        release.set()

        assert await second == b"tile"
        with pytest.raises(asyncio.CancelledError):
            await first
        assert cache.get(KEY) == b"tile"
        await cache.flush()

    asyncio.run(scenario())


def test_a_fresh_derivative_is_served_from_memory_until_its_file_lands(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)

    async def scenario() -> None:
        async def compute() -> bytes:
            return b"fresh tile"

        assert await cache.get_or_compute(KEY, compute) == b"fresh tile"
        assert cache.get(KEY) == b"fresh tile"  # written or not yet, it is a hit
        await cache.flush()
        assert stored_files(tmp_path) != []
        assert cache.total_bytes == len(b"fresh tile")

    asyncio.run(scenario())
    assert make_cache(tmp_path).get(KEY) == b"fresh tile"  # on disk for a restart


def test_writes_wait_for_a_quiet_moment_then_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_writes, "_QUIET_SECONDS", 0.05)
    cache = make_cache(tmp_path)
    group = Group("sample", "/images/a.jpg")

    async def scenario() -> None:
        for n in range(3):  # a burst: each new derivative postpones the writes
            cache.put_soon(key(n), b"tile %d" % n, group)
            await asyncio.sleep(0.01)
        assert stored_files(tmp_path) == []
        assert cache.get(key(2), group) == b"tile 2"  # served from memory meanwhile
        while cache.writes.busy:  # the quiet timer hands them over
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert len(stored_files(tmp_path)) == 3
    assert make_cache(tmp_path).get(key(1), group) == b"tile 1"


def test_too_many_deferred_writes_go_to_the_writer_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_writes, "_MAX_DEFERRED", 2)
    cache = make_cache(tmp_path)

    async def scenario() -> None:
        for n in range(3):
            cache.put_soon(key(n), b"tile %d" % n)
        assert len(cache.writes._deferred) == 2  # the oldest was handed over
        await cache.flush()

    asyncio.run(scenario())
    assert len(stored_files(tmp_path)) == 3


def test_close_writes_what_is_still_deferred(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    group = Group("sample", "/images/a.jpg")

    async def scenario() -> None:
        cache.put_soon(KEY, b"tile", group)

    asyncio.run(scenario())
    cache.close()
    assert make_cache(tmp_path).get(KEY, group) == b"tile"


def test_a_grouped_entry_lives_in_its_sources_folder_and_loads_again(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    group = Group("sample", "/images/a.jpg")
    cache.put(KEY, b"tile", group)
    cache.put(key(1), b"plain")

    path = cache_path(tmp_path, key(1))
    assert path.exists()  # a key without a group keeps the plain layout
    (grouped,) = (p for p in stored_files(tmp_path) if p != path)
    assert grouped.name.startswith(source_tag("/images/a.jpg"))
    assert grouped.parent.name == grouped.name[:2]
    restarted = make_cache(tmp_path)
    assert len(restarted) == 2
    assert restarted.get(KEY, group) == b"tile"
    assert restarted.get(KEY) is None  # another name


def test_purge_removes_one_source_one_type_or_everything(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    groups = [Group("sample", "/a.jpg"), Group("sample", "/b.jpg"), Group("other", "/c.jpg")]
    for n, group in enumerate(groups):
        cache.put(key(n), b"x" * 10, group)
    cache.put(key(9), b"ungrouped")
    sibling = make_cache(tmp_path)  # another front process on the same folder

    async def purge(target: DerivativeCache, selection: Selection, files: bool) -> int:
        return await target.purge(selection, files=files)

    assert asyncio.run(purge(cache, Selection.of(sources=["/a.jpg"]), True)) == 1
    assert asyncio.run(purge(sibling, Selection.of(sources=["/a.jpg"]), False)) == 1
    assert cache.get(key(0), groups[0]) is None and sibling.get(key(0), groups[0]) is None
    assert cache.get(key(1), groups[1]) == b"x" * 10
    assert asyncio.run(purge(cache, Selection.of(types=["other"]), True)) == 1
    assert cache.get(key(2), groups[2]) is None and cache.get(key(1), groups[1]) is not None
    assert asyncio.run(purge(cache, Selection.of(everything=True), True)) == 2
    assert stored_files(tmp_path) == [] and len(cache) == 0 and cache.total_bytes == 0


def test_a_result_computed_across_a_purge_is_returned_but_not_stored(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)

    async def run() -> bytes:
        started = asyncio.Event()

        async def compute() -> bytes:
            started.set()
            await asyncio.sleep(0.01)
            return b"made from what was purged"

        task = asyncio.ensure_future(cache.get_or_compute(KEY, compute))
        await started.wait()
        await cache.purge(Selection.of(everything=True))
        data = await task
        await cache.flush()
        return data

    assert asyncio.run(run()) == b"made from what was purged"
    assert cache.get(KEY) is None and stored_files(tmp_path) == []
