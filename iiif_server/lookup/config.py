"""The `lookup:` settings: where the listing comes from, how often, and where the index answers.

Parsing raises `ValueError` with the key path below `lookup` (`interval: ...`);
the server's `config.py` turns that into a `ConfigError` naming `lookup.interval`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..sections import checked_values

# A scheme is one path segment of the query URL and part of a file name.
_SCHEME = re.compile(r"[A-Za-z0-9_.:-]+")
_MODE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, kw_only=True)
class LookupSettings:
    # Template with {scheme} (http, https, or file: for a listing on this machine); None: off.
    # The default answers from the shipped sample listing.
    listing_url: str | None = "file:data/lookup/{scheme}.json"
    schemes: tuple[str, ...] = ("archive.org",)
    mount: str = "/lookup"
    interval: float = 60.0  # seconds between syncs (with jitter)
    timeout: float = 120.0  # seconds one sync (download and parse) may take
    max_listing_bytes: int = 2 * 10**9
    fallback: Mapping[str, str] = field(default_factory=dict)  # mode -> template

    @property
    def enabled(self) -> bool:
        return self.listing_url is not None and bool(self.schemes)

    @property
    def max_age(self) -> int:
        """Seconds a client may keep an answer: one interval, at most five minutes."""
        return int(min(self.interval, 300))

    def url(self, scheme: str) -> str:
        assert self.listing_url is not None
        return self.listing_url.replace("{scheme}", scheme)

    def local_file(self, scheme: str) -> Path | None:
        """The listing's path for a `file:` template (relative to the working directory)."""
        url = self.url(scheme)
        if not url.startswith("file:"):
            return None
        path = url.removeprefix("file:")
        return Path(path.removeprefix("//") if path.startswith("///") else path)


def _http_template(key: str, value: Any, placeholders: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key}: must be an http(s) URL template, got {value!r}")
    sample = value.replace("{scheme}", "s").replace("{id}", "i")
    parts = urlsplit(sample)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{key}: must be an absolute http(s) URL template, got {value!r}")
    if any(name in urlsplit(value).netloc for name in placeholders):
        raise ValueError(f"{key}: a placeholder may not be part of the host")
    return value


def _listing_url(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "{scheme}" not in value:
        raise ValueError(f"{key}: must be a URL template containing {{scheme}}, got {value!r}")
    if value.startswith("file:"):
        return value  # a listing the operator placed on this machine (the shipped sample)
    return _http_template(key, value, ("{scheme}",))


def _schemes(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key}: must be a list of id schemes")
    schemes = tuple(str(scheme) for scheme in value)
    for scheme in schemes:
        if not _SCHEME.fullmatch(scheme):
            raise ValueError(f"{key}: {scheme!r} may hold only letters, digits, '_.:-'")
    if len(set(schemes)) != len(schemes):
        raise ValueError(f"{key}: a scheme is listed twice")
    return schemes


def _mount(key: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"/|(/[A-Za-z0-9_.~-]+)+/?", value):
        raise ValueError(f"{key}: must be a URL path such as /lookup or /, got {value!r}")
    return value.rstrip("/") or "/"


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{key}: must be a positive number of seconds, got {value!r}")
    return float(value)


def _fallback(key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: must be a mapping of mode to URL template")
    templates = {}
    for mode, template in value.items():
        if not isinstance(mode, str) or not _MODE.fullmatch(mode):
            raise ValueError(f"{key}: {mode!r} is not a mode name")
        templates[mode] = _http_template(f"{key}.{mode}", template, ("{scheme}", "{id}"))
    return templates


def parse_lookup(raw: Any, parse_size: Callable[[str, Any], int]) -> LookupSettings:
    """Validate the `lookup:` mapping; errors are `ValueError('sub.key: why')`.

    `parse_size` reads `max_listing_bytes` (`2GB`) as the server's other sizes.
    """
    if raw is None:
        return LookupSettings()
    if not isinstance(raw, Mapping):
        raise ValueError("must be a mapping of lookup settings")
    checks: dict[str, Callable[[str, Any], Any]] = {
        "listing_url": _listing_url,
        "schemes": _schemes,
        "mount": _mount,
        "interval": _seconds,
        "timeout": _seconds,
        "max_listing_bytes": parse_size,
        "fallback": _fallback,
    }
    values = checked_values(raw, checks)
    settings = LookupSettings(**values)
    if settings.max_listing_bytes < 2:
        raise ValueError("max_listing_bytes: must be at least 2 bytes")
    if settings.listing_url is not None and not settings.schemes:
        raise ValueError("schemes: a listing_url needs at least one scheme")
    return settings
