"""The `covers:` settings: provider order, deadline, store, and per provider URL and TTLs.

Parsing raises `ValueError` with the key path below `covers` (`gb.ttl: ...`);
the server's `config.py` turns that into a `ConfigError` naming `covers.gb.ttl`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..sections import checked_values

PROVIDERS = ("gb", "ol", "aws")
IMAGE_SIZES = ("small", "medium", "large")
DEFAULT_BASE_URLS = {
    "gb": "https://books.google.com/books",
    "ol": "https://openlibrary.org/api/books",
    "aws": "https://images-na.ssl-images-amazon.com/images/P",
}


@dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    base_url: str
    ttl: float = 86400.0  # seconds a found cover URL is kept
    negative_ttl: float = 3600.0  # seconds a confirmed "no cover" is kept
    image_size: str = "medium"  # ol only: small, medium or large


def _provider_defaults(name: str) -> ProviderSettings:
    return ProviderSettings(base_url=DEFAULT_BASE_URLS[name])


@dataclass(frozen=True, kw_only=True)
class CoversSettings:
    providers: tuple[str, ...] = ("gb", "ol")  # enabled providers, in the default order
    timeout: int = 8000  # ms: the deadline of one /cover request
    max_ids: int = 100
    store: str = "sqlite"  # `sqlite` (a file under cache_path) or redis://host:port/db
    memory_entries: int = 100_000  # in-memory LRU in front of the SQLite file
    store_entries: int = 1_000_000  # rows kept in the SQLite file
    cooldown: float = 60.0  # seconds a failing provider is skipped
    cooldown_after: int = 3  # consecutive failures that start a cool-down
    set_token: str | None = None  # bearer token of /set; None: /set is off
    gb: ProviderSettings = field(default_factory=lambda: _provider_defaults("gb"))
    ol: ProviderSettings = field(default_factory=lambda: _provider_defaults("ol"))
    aws: ProviderSettings = field(default_factory=lambda: _provider_defaults("aws"))

    @property
    def deadline(self) -> float:
        """The request deadline in seconds."""
        return self.timeout / 1000

    def provider(self, name: str) -> ProviderSettings:
        settings: ProviderSettings = getattr(self, name)
        return settings


def _positive(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{key}: must be a positive number, got {value!r}")
    return float(value)


def _count(key: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{key}: must be an integer of at least {low}, got {value!r}")
    return value


def _http_url(key: str, value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(f"{key}: must be an http(s) URL without query, got {value!r}")
    url: str = value
    return url.rstrip("/")


def _providers(key: str, value: Any) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise ValueError(f"{key}: must be a non-empty list of {', '.join(PROVIDERS)}")
    cleaned = tuple(str(name).strip() for name in names)
    for name in cleaned:
        if name not in PROVIDERS:
            raise ValueError(f"{key}: unknown provider {name!r} (known: {', '.join(PROVIDERS)})")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError(f"{key}: a provider is listed twice")
    return cleaned


def _store(key: str, value: Any) -> str:
    if value == "sqlite":
        return "sqlite"
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"{key}: must be 'sqlite' or redis://host:port/db, got {value!r}")
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ValueError(f"{key}: the Redis database must be a number, got {parts.path!r}")
    return str(value)


def _token(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) < 16:
        raise ValueError(f"{key}: must be a secret of at least 16 characters (or null: off)")
    return value.strip()


def _provider_settings(name: str, raw: Any) -> ProviderSettings:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name}: must be a mapping")
    known = {f.name for f in dataclasses.fields(ProviderSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{name}.{key}"
        if key not in known or (key == "image_size" and name != "ol"):
            raise ValueError(f"{path}: unknown key")
        if key == "base_url":
            values[key] = _http_url(path, value)
        elif key == "image_size":
            if value not in IMAGE_SIZES:
                raise ValueError(f"{path}: must be one of {', '.join(IMAGE_SIZES)}")
            values[key] = value
        else:
            values[key] = _positive(path, value)
    return dataclasses.replace(_provider_defaults(name), **values)


def parse_covers(raw: Any) -> CoversSettings:
    """Validate the `covers:` mapping; errors are `ValueError('sub.key: why')`."""
    if raw is None:
        return CoversSettings()
    if not isinstance(raw, Mapping):
        raise ValueError("must be a mapping of cover settings")
    checks: dict[str, Any] = {
        "providers": _providers,
        "timeout": _count,
        "max_ids": _count,
        "store": _store,
        "memory_entries": _count,
        "store_entries": _count,
        "cooldown": _positive,
        "cooldown_after": _count,
        "set_token": _token,
    }
    checks.update(dict.fromkeys(PROVIDERS, _provider_settings))
    return CoversSettings(**checked_values(raw, checks))
