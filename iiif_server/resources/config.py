"""The `resources:` settings: the folder served, its mount point and the limits of transforms.

Parsing raises `ValueError` with the key below `resources` (`mount: ...`);
the server's `config.py` turns that into a `ConfigError` naming `resources.mount`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_values import parse_bytes
from ..sections import checked_values

_MOUNT = re.compile(r"/|(/[A-Za-z0-9._~-]+)+")


@dataclass(frozen=True, kw_only=True)
class ResourcesSettings:
    root: Path | None = Path("data/resources")  # None: the API is off
    mount: str = "/resources"  # URL prefix; "/" serves at the server root
    max_dimension: int = 2500  # largest img:w / img:h
    jpeg_quality: int = 85  # img:q when not given
    max_age: int = 31_536_000  # seconds of Cache-Control and Expires
    intermediate_sizes: tuple[int, ...] = (250, 500, 1000, 2000)  # longest sides; () off
    max_entry_bytes: int = 64 * 2**20  # largest file read out of an archive, decompressed

    @property
    def prefix(self) -> str:
        """The mount as a path prefix: "" for "/", else the mount itself."""
        return "" if self.mount == "/" else self.mount


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key}: must be an integer between {low} and {high}, got {value!r}")
    return value


def _root(key: str, value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ValueError(f"{key}: must be a folder path or null (off), got {value!r}")
    return Path(value)


def _mount(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _MOUNT.fullmatch(value.rstrip("/") or "/"):
        raise ValueError(f"{key}: must be '/' or a path such as /resources, got {value!r}")
    return value.rstrip("/") or "/"


def _sizes(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key}: must be a list of longest sides in pixels, e.g. [500, 1000]")
    sizes = tuple(_int(key, size, 16, 20_000) for size in value)
    return tuple(sorted(set(sizes)))


def _bytes(key: str, value: Any) -> int:
    size = parse_bytes(key, value)
    if size < 1:
        raise ValueError(f"{key}: must be at least one byte, got {value!r}")
    return size


def parse_resources(raw: Any) -> ResourcesSettings:
    """Validate the `resources:` mapping; errors are `ValueError('key: why')`."""
    if raw is None:
        return ResourcesSettings()
    if not isinstance(raw, Mapping):
        raise ValueError("must be a mapping of resources settings")
    checks: dict[str, Any] = {
        "root": _root,
        "mount": _mount,
        "max_dimension": lambda k, v: _int(k, v, 1, 20_000),
        "jpeg_quality": lambda k, v: _int(k, v, 1, 100),
        "max_age": lambda k, v: _int(k, v, 0, 10 * 31_536_000),
        "intermediate_sizes": _sizes,
        "max_entry_bytes": _bytes,
    }
    values = checked_values(raw, checks)
    return ResourcesSettings(**values)
