"""Downloaded web sources on disk: `{root}/{type}/ab/abcd...`, bounded in bytes, LRU evicted.

Each entry is keyed by its type and URL (sha256 of the URL names the file) and has a
small JSON sidecar `{digest}.json` with the URL, the upstream validators (ETag,
Last-Modified), the fetch time and the data file's size and mtime. The sidecar is
written after the data file is in place and both are renamed into place from temp
files, so after a crash `load()` finds either a complete pair or something it drops.

The data file's mtime is the source's identity (`SourceFile.mtime_ns`): every adopted
download gets a strictly later one, so derivatives of an older download are never
served for a newer one. LRU order is therefore kept on the sidecar's mtime instead,
refreshed at most once per `touch_interval`, which carries it across restarts.

Several front processes may share the folders, as they share the derivative cache:
each indexes what it downloads or finds, takes up on a miss a pair another process
wrote, and evicts within its own share of the budget. Unlike `DerivativeCache` (bytes
in, bytes out, one root), this store hands out paths that workers open later, spans
one folder per type, and keeps metadata per entry. All methods run on the event-loop
thread; there is no locking.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..cache import TEMP_PREFIX
from .base import SourceFile
from .fetch import Validators

logger = logging.getLogger(__name__)

_SIDECAR = ".json"
_HEX = frozenset("0123456789abcdef")
# Temp files older than this at start-up are leftovers of a dead download; younger ones
# may belong to another front process downloading right now (downloads time out sooner).
STALE_TEMP_SECONDS = 600.0


@dataclass(frozen=True)
class StoredSource:
    """One downloaded source and what is known about its download."""

    folder: str
    digest: str
    url: str
    file: SourceFile
    validators: Validators
    fetched: float  # wall-clock time of the last download or confirmation (304)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "size": self.file.size,
            "mtime_ns": self.file.mtime_ns,
            "etag": self.validators.etag,
            "last_modified": self.validators.last_modified,
            "fetched": self.fetched,
        }


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class SourceStore:
    """Downloaded sources of every web type, bounded by `max_bytes` of data files."""

    def __init__(
        self, root: Path, folders: Iterable[str], max_bytes: int, *, touch_interval: float = 600.0
    ) -> None:
        self.root = Path(root).absolute()
        self.folders = tuple(folders)
        self.max_bytes = max_bytes
        self.touch_interval = touch_interval
        self._index: OrderedDict[tuple[str, str], StoredSource] = OrderedDict()
        self._touched: dict[tuple[str, str], float] = {}
        self._total_bytes = 0
        self._loaded = False
        self.evictions = 0

    @property
    def total_bytes(self) -> int:
        return self._total_bytes

    def __len__(self) -> int:
        return len(self._index)

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    def load(self) -> None:
        """Index what earlier runs downloaded (least recently used first), drop the rest."""
        found: list[tuple[float, StoredSource]] = []
        for folder in self.folders:
            for directory in self._fan_out(self.root / folder):
                found.extend(self._scan(folder, directory))
        found.sort(key=lambda item: item[0])
        self._index.clear()
        self._touched.clear()
        self._total_bytes = 0
        for touched, entry in found:
            key = (entry.folder, entry.digest)
            self._index[key] = entry
            self._touched[key] = touched
            self._total_bytes += entry.file.size
        self._loaded = True
        self._evict()

    def lookup(self, folder: str, url: str) -> StoredSource | None:
        """The stored download of `url`, if its file is still the one recorded."""
        digest = _digest(url)
        key = (folder, digest)
        entry = self._index.get(key)
        if entry is None or not self._unchanged(entry.file):
            # Unknown here, or replaced or removed underneath, perhaps by another front
            # process: whatever consistent pair is on disk now is the entry.
            pair = self._read_pair(folder, self._path(folder, digest))
            if pair is None or pair[1].url != url:
                self._drop(key)
                return None
            self._put(pair[1])
            return pair[1]
        self._index.move_to_end(key)
        now = time.time()
        if now - self._touched.get(key, 0.0) >= self.touch_interval:
            self._touched[key] = now
            with suppress(OSError):
                os.utime(self._sidecar(entry.file.path))
        return entry

    def etag_of(self, file: SourceFile) -> str | None:
        """The upstream ETag of the download `file` is, if this store holds it: the same
        on every node, where the file's mtime (its identity here) is not."""
        entry = self._index.get((file.path.parent.parent.name, file.path.name))
        if entry is None or entry.file != file:
            return None
        return entry.validators.etag

    def temp_path(self, folder: str, url: str) -> Path:
        """A fresh temp file name in the directory where `url`'s entry will live."""
        directory = self._path(folder, _digest(url)).parent
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"

    @staticmethod
    def discard(temp: Path) -> None:
        """Remove a temp file from `temp_path` that was not adopted (if it exists)."""
        with suppress(OSError):
            temp.unlink(missing_ok=True)

    def adopt(
        self, folder: str, url: str, temp: Path, validators: Validators, previous: int = 0
    ) -> StoredSource:
        """Move a complete download into place and index it; evicts down to `max_bytes`.

        `previous` is the mtime_ns of the download being replaced: the new one's is
        strictly later, even within the file system's timestamp granularity.
        """
        digest = _digest(url)
        path = self._path(folder, digest)
        # A file system with coarse timestamps may round the first try down to `previous`.
        for mtime_ns in (max(time.time_ns(), previous + 1000), previous + 2 * 10**9):
            os.utime(temp, ns=(mtime_ns, mtime_ns))
            stat = temp.stat()
            if stat.st_mtime_ns > previous:
                break
        file = SourceFile(path, stat.st_size, stat.st_mtime_ns)
        entry = StoredSource(folder, digest, url, file, validators, time.time())
        temp.replace(path)
        self._write_sidecar(entry)
        self._put(entry)
        return entry

    def renew(self, entry: StoredSource) -> StoredSource:
        """Record that upstream confirmed `entry` unchanged (a 304) just now."""
        renewed = replace(entry, fetched=time.time())
        with suppress(OSError):
            self._write_sidecar(renewed)
        key = (entry.folder, entry.digest)
        if key in self._index:
            self._index[key] = renewed
            self._index.move_to_end(key)
        return renewed

    def forget(self, entry: StoredSource) -> None:
        """Drop `entry` and its files."""
        self._drop((entry.folder, entry.digest))
        self._remove(entry.file.path)

    def path_for(self, folder: str, url: str) -> Path:
        """Where the download of `url` is (or would be) kept."""
        return self._path(folder, _digest(url))

    def purge(self, folder: str | None = None, url: str | None = None, *, files: bool) -> int:
        """Forget the download of `url` in `folder`, or all of `folder`, or (None) everything.

        With `files`, the downloads are deleted from disk too; front processes that
        share the folders pass False and find the files gone on their next lookup.
        Returns how many entries this process forgot or deleted.
        """
        if url is not None:
            assert folder is not None, "a URL is purged within its folder"
            keys = [(folder, _digest(url))]
        else:
            keys = [key for key in self._index if folder is None or key[0] == folder]
        forgotten = 0
        for key in keys:
            forgotten += key in self._index
            self._drop(key)
        if not files:
            return forgotten
        if url is not None:
            assert folder is not None
            path = self._path(folder, _digest(url))
            existed = path.exists()
            self._remove(path)
            return int(existed)
        removed = 0
        for name in self.folders if folder is None else (folder,):
            for directory in self._fan_out(self.root / name):
                with suppress(OSError), os.scandir(directory) as entries:
                    for e in entries:
                        if e.name.startswith(TEMP_PREFIX) or e.name.endswith(_SIDECAR):
                            continue  # a download in progress; a sidecar goes with its file
                        self._remove(Path(e.path))
                        removed += 1
        return removed

    def _drop(self, key: tuple[str, str]) -> None:
        removed = self._index.pop(key, None)
        self._touched.pop(key, None)
        if removed is not None:
            self._total_bytes -= removed.file.size

    @staticmethod
    def _unchanged(file: SourceFile) -> bool:
        try:
            stat = file.path.stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (file.size, file.mtime_ns)

    def _put(self, entry: StoredSource) -> None:
        key = (entry.folder, entry.digest)
        old = self._index.pop(key, None)
        if old is not None:
            self._total_bytes -= old.file.size
        self._index[key] = entry
        self._touched[key] = time.time()
        self._total_bytes += entry.file.size
        self._evict()

    def _evict(self) -> None:
        # Never the newest entry: it is being served right now (max_bytes >= one source).
        while self._total_bytes > self.max_bytes and len(self._index) > 1:
            key, entry = self._index.popitem(last=False)
            self._touched.pop(key, None)
            self._total_bytes -= entry.file.size
            self.evictions += 1
            self._remove(entry.file.path)

    def _path(self, folder: str, digest: str) -> Path:
        return self.root / folder / digest[:2] / digest

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + _SIDECAR)

    def _remove(self, path: Path) -> None:
        # Sidecar first: a data file without one is dropped by the next load anyway.
        for name in (self._sidecar(path), path):
            with suppress(OSError):
                name.unlink(missing_ok=True)

    def _write_sidecar(self, entry: StoredSource) -> None:
        sidecar = self._sidecar(entry.file.path)
        temp = sidecar.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        try:
            temp.write_text(json.dumps(entry.to_json()), encoding="utf-8")
            temp.replace(sidecar)
        except BaseException:
            with suppress(OSError):
                temp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _fan_out(folder: Path) -> list[Path]:
        try:
            with os.scandir(folder) as entries:
                return [
                    Path(e.path)
                    for e in entries
                    if len(e.name) == 2 and _HEX.issuperset(e.name) and e.is_dir()
                ]
        except OSError:
            return []

    def _scan(self, folder: str, directory: Path) -> list[tuple[float, StoredSource]]:
        """(sidecar mtime, entry) of complete pairs; removes temp files and strays."""
        names: dict[str, os.DirEntry[str]] = {}
        now = time.time()
        with suppress(OSError), os.scandir(directory) as entries:
            for e in entries:
                if not e.name.startswith(TEMP_PREFIX):
                    names[e.name] = e
                    continue
                with suppress(OSError):
                    if now - e.stat().st_mtime > STALE_TEMP_SECONDS:
                        Path(e.path).unlink(missing_ok=True)
        found: list[tuple[float, StoredSource]] = []
        for name, e in names.items():
            if name.endswith(_SIDECAR) or not e.is_file(follow_symlinks=False):
                continue
            pair = self._read_pair(folder, Path(e.path))
            if pair is None:
                self._remove(Path(e.path))
            else:
                found.append(pair)
        for name, e in names.items():
            if name.endswith(_SIDECAR) and name[: -len(_SIDECAR)] not in names:
                with suppress(OSError):
                    Path(e.path).unlink(missing_ok=True)
        return found

    @staticmethod
    def _read_pair(folder: str, data: Path) -> tuple[float, StoredSource] | None:
        """(sidecar mtime, entry) when data file and sidecar agree, else None."""
        sidecar = data.with_name(data.name + _SIDECAR)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            touched = sidecar.stat().st_mtime
            stat = data.stat()
            url, size, mtime_ns = str(meta["url"]), int(meta["size"]), int(meta["mtime_ns"])
            if (
                _digest(url) != data.name
                or data.name[:2] != data.parent.name
                or (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns)
            ):
                return None
            validators = Validators(meta.get("etag"), meta.get("last_modified"))
            fetched = float(meta["fetched"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        file = SourceFile(data, size, mtime_ns)
        return touched, StoredSource(folder, data.name, url, file, validators, fetched)
