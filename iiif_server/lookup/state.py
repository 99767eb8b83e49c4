"""What the processes of one machine share on disk, under `cache_path/lookup/`.

    {scheme}.index   the last good listing of a scheme (`index.py`), replaced by rename
    status.json      per scheme: last attempt, last success, last error, counts and the
                     conditional-GET validators; written only by the process that syncs
    leader.lock      held (flock) by the one server process that schedules syncs
    sync.lock        held while a sync runs (the leader's, or `iiif-server lookup sync`)
Every write is atomic (a temporary file, fsync, rename), so a reader, or a
restart after a crash, sees the old version or the new one, never half.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

STATUS_FILE = "status.json"
LEADER_LOCK = "leader.lock"
SYNC_LOCK = "sync.lock"


def index_path(folder: Path, scheme: str) -> Path:
    return folder / f"{quote(scheme, safe='')}.index"


def temporary_path(path: Path, pid: int | None = None) -> Path:
    """A sibling name that no other process writes to at the same time."""
    return path.with_name(f".{path.name}.{pid or os.getpid()}.tmp")


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_atomically(temporary: Path, path: Path) -> None:
    """`temporary` (already fsynced) becomes `path` in one step that survives a crash."""
    temporary.replace(path)
    fsync_folder(path.parent)


@dataclass
class SchemeStatus:
    last_attempt: float | None = None  # wall-clock seconds
    last_success: float | None = None
    last_change: float | None = None  # when a new listing last replaced the old one
    last_error: str | None = None
    last_duration: float | None = None  # seconds the last attempt took
    ids: int = 0
    urls: int = 0
    dropped_urls: int = 0
    dropped_ids: int = 0
    etag: str | None = None
    last_modified: str | None = None

    def document(self) -> dict[str, Any]:
        """The public form: times as ISO 8601, validators left out."""
        public = asdict(self)
        del public["etag"], public["last_modified"]
        for key in ("last_attempt", "last_success", "last_change"):
            if public[key] is not None:
                public[key] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(public[key]))
        return public


_KNOWN = {f.name for f in fields(SchemeStatus)}


def read_status(folder: Path) -> dict[str, SchemeStatus]:
    """The shared status; empty when missing or unreadable (it is rewritten at the next sync)."""
    try:
        raw = json.loads((folder / STATUS_FILE).read_bytes())
        return {
            str(scheme): SchemeStatus(**{k: v for k, v in values.items() if k in _KNOWN})
            for scheme, values in raw.items()
        }
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def write_status(folder: Path, statuses: dict[str, SchemeStatus]) -> None:
    path = folder / STATUS_FILE
    temporary = temporary_path(path)
    with temporary.open("w", encoding="utf-8") as file:
        json.dump({scheme: asdict(status) for scheme, status in statuses.items()}, file)
        file.flush()
        os.fsync(file.fileno())
    replace_atomically(temporary, path)
