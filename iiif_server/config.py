"""Typed settings: built-in defaults, then a YAML file, then `IIIF_SERVER_<KEY>` variables.

Every key has a default, so the server runs with no file at all. An unknown
key or a bad value raises `ConfigError` naming the key, which stops start-up.
Relative paths are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .config_values import (
    ConfigError as ConfigError,
)
from .config_values import (
    boolean,
    integer,
    nonempty_text,
    optional_text,
    parse_bytes,
    path_value,
    positive_bytes,
    seconds,
    seconds_or_zero,
    section,
)
from .covers.config import CoversSettings, parse_covers
from .iiif.params import ConfinedSize
from .lookup.config import LookupSettings, parse_lookup
from .resources.config import ResourcesSettings, parse_resources
from .shared.config import parse_shared_cache, parse_shared_info
from .sources.s3_config import S3_KEYS, S3Settings, parse_s3

ENV_PREFIX = "IIIF_SERVER_"
# `processes: auto`: one front per core, at most this many (they share one set of pools).
MAX_AUTO_PROCESSES = 8
SOURCE_KINDS = ("disk", "web", "trusted_web", "isbn", "s3")


@dataclass(frozen=True, kw_only=True)
class TypeSettings:
    """One identifier type (`type:name`): where its sources come from."""

    name: str
    source: str = "disk"
    url: str | None = None  # web: template containing {name}
    regex: str | None = None  # trusted_web: URLs must fully match
    ttl: float | None = None  # web kinds: seconds before a source is fetched again
    rights: str | None = None  # 3.0 `rights`, 2.1 `license`
    attribution: str | None = None  # 2.1 `attribution`
    logo: str | None = None  # 2.1 `logo`
    s3: S3Settings | None = None  # s3: its bucket, prefix, endpoint... (keys of the type itself)


@dataclass(frozen=True, kw_only=True)
class Settings:
    base_url: str | None = None
    host: str = "127.0.0.1"
    http_port: int = 4040
    processes: int = field(default_factory=lambda: auto_processes())  # `auto`, resolved
    event_loop: str = field(default_factory=lambda: default_event_loop())  # `auto`, resolved
    cache_path: Path = Path("data/cache")
    source_path: Path = Path("data/sources")
    cache_max_bytes: int = 10 * 10**9
    hot_cache_bytes: int = 64 * 2**20
    types: Mapping[str, TypeSettings] = field(
        default_factory=lambda: {"sample": TypeSettings(name="sample")}
    )
    default_type: str | None = "sample"
    min_sizes_size: int = 200
    tile_size: int = 512
    size_pool_size: int = 1
    image_pool_size: int = 2
    info_cache_size: int = 4096
    # Decoded images kept by each image worker (None: as many as fit in
    # image_cache_max_bytes, which bounds them in every case).
    image_cache_size_per_process: int | None = None
    image_cache_max_bytes: int = 512 * 2**20
    max_queue_per_worker: int = 32
    image_task_timeout: float = 60.0
    size_task_timeout: float = 10.0
    max_http_fetches: int = 8
    max_http_waiting: int = 256
    http_connect_timeout: float = 10.0
    http_timeout: float = 60.0
    max_redirects: int = 5
    max_source_bytes: int = 200 * 10**6
    source_cache_max_bytes: int = 10 * 10**9
    negative_cache_ttl: float = 30.0
    allow_private_addresses: bool = False
    max_width: int = 10000
    max_height: int = 10000
    max_area: int = 50_000_000
    allow_upscaling: bool = True
    confined_size: ConfinedSize = "clamp"
    max_source_pixels: int = 400_000_000
    page_delimiter: str = ";"  # `books:scan.pdf;12` is page 12
    pdf_dpi: int = 150
    jpeg_quality: int = 73
    jpeg_optimize: bool = False
    jpeg_progressive: bool = False
    png_compress_level: int = 1
    webp_quality: int = 90
    webp_method: int = 0
    cache_control: str = "public, max-age=86400"
    log_level: str = "info"
    log_format: str = "text"  # text | json: one JSON object a line
    admin_token: str | None = None  # bearer token of /admin/...; None: no admin API
    metrics_need_token: bool = False  # /metrics asks for the admin token too
    covers: CoversSettings = field(default_factory=CoversSettings)
    lookup: LookupSettings = field(default_factory=LookupSettings)
    resources: ResourcesSettings = field(default_factory=ResourcesSettings)
    # Several nodes: a bucket of derivatives, and Redis for infos and purges (shared/).
    shared_cache: S3Settings | None = None
    shared_info: str | None = None
    # Not a key: what the file says that works but deserves a word at start-up.
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)


def auto_processes() -> int:
    """One front process per core this process may run on, at most MAX_AUTO_PROCESSES."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_AUTO_PROCESSES))


def default_event_loop() -> str:
    """uvloop when it is installed (it is a dependency on Linux and macOS), else asyncio's."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def _event_loop(key: str, value: Any) -> str:
    if value == "auto":
        return default_event_loop()
    if value not in ("uvloop", "asyncio"):
        raise ConfigError(f"{key}: must be auto, uvloop or asyncio, got {value!r}")
    if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError(f"{key}: uvloop is not installed (pip install uvloop)")
    return str(value)


def _processes(key: str, value: Any) -> int:
    if value == "auto":
        return auto_processes()
    if isinstance(value, str):
        raise ConfigError(f"{key}: must be 'auto' or an integer, got {value!r}")
    return integer(1, 64)(key, value)


def _base_url(key: str, value: Any) -> str | None:
    if value is None:
        return None
    url = nonempty_text(key, value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigError(f"{key}: must be an http(s) URL without query, got {value!r}")
    return url.rstrip("/")


def _log_level(key: str, value: Any) -> str:
    levels = ("debug", "info", "warning", "error")
    if not isinstance(value, str) or value.lower() not in levels:
        raise ConfigError(f"{key}: must be one of {', '.join(levels)}, got {value!r}")
    return value.lower()


def _log_format(key: str, value: Any) -> str:
    if value not in ("text", "json"):
        raise ConfigError(f"{key}: must be text or json, got {value!r}")
    return str(value)


def _admin_token(key: str, value: Any) -> str | None:
    # Long enough that guessing it over HTTP is hopeless; compared in constant time.
    if value is not None and (not isinstance(value, str) or len(value.strip()) < 16):
        raise ConfigError(f"{key}: must be a string of at least 16 characters, or null")
    return None if value is None else value.strip()


def _confined_size(key: str, value: Any) -> ConfinedSize:
    if value == "clamp" or value == "error":
        return value  # type: ignore[no-any-return]
    raise ConfigError(f"{key}: must be clamp or error, got {value!r}")


def _page_delimiter(key: str, value: Any) -> str:
    # Letters and digits belong to names; ':' '/' '%' and spaces to the identifier's syntax.
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 4
        or any(c.isalnum() or c.isspace() or c in ":/%" for c in value)
    ):
        raise ConfigError(
            f"{key}: must be 1 to 4 characters, no letters, digits, spaces, ':', '/' or '%', "
            f"got {value!r}"
        )
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "base_url": _base_url,
    "host": nonempty_text,
    "http_port": integer(1, 65535),
    "processes": _processes,
    "event_loop": _event_loop,
    "cache_path": path_value,
    "source_path": path_value,
    "cache_max_bytes": parse_bytes,
    "hot_cache_bytes": parse_bytes,
    "default_type": optional_text,
    "min_sizes_size": integer(1),
    "tile_size": integer(16, 8192),
    "size_pool_size": integer(1, 256),
    "image_pool_size": integer(1, 256),
    "info_cache_size": integer(1),
    "image_cache_max_bytes": positive_bytes,
    "max_queue_per_worker": integer(1),
    "image_task_timeout": seconds,
    "size_task_timeout": seconds,
    "max_http_fetches": integer(1, 1024),
    "max_http_waiting": integer(0),
    "http_connect_timeout": seconds,
    "http_timeout": seconds,
    "max_redirects": integer(0, 20),
    "max_source_bytes": positive_bytes,
    "source_cache_max_bytes": parse_bytes,
    "negative_cache_ttl": seconds_or_zero,
    "allow_private_addresses": boolean,
    "max_width": integer(1),
    "max_height": integer(1),
    "max_area": integer(1),
    "allow_upscaling": boolean,
    "confined_size": _confined_size,
    "max_source_pixels": integer(1),
    "page_delimiter": _page_delimiter,
    "pdf_dpi": integer(10, 2400),
    "jpeg_quality": integer(1, 100),
    "jpeg_optimize": boolean,
    "jpeg_progressive": boolean,
    "png_compress_level": integer(0, 9),
    "webp_quality": integer(0, 100),
    "webp_method": integer(0, 6),
    "cache_control": nonempty_text,
    "log_level": _log_level,
    "log_format": _log_format,
    "admin_token": _admin_token,
    "metrics_need_token": boolean,
    "covers": section(parse_covers),
    "lookup": section(functools.partial(parse_lookup, parse_size=parse_bytes)),
    "resources": section(parse_resources),
    "shared_cache": section(parse_shared_cache),
    "shared_info": section(parse_shared_info),
}
_TYPE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _type_settings(name: str, raw: Any, warnings: list[str]) -> TypeSettings:
    prefix = f"types.{name}"
    if not _TYPE_NAME.fullmatch(name):
        raise ConfigError(f"{prefix}: a type name may hold only letters, digits, '_', '.', '-'")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix}: must be a mapping with at least 'source'")
    source = raw.get("source", "disk")
    if source not in SOURCE_KINDS:
        raise ConfigError(
            f"{prefix}.source: must be one of {', '.join(SOURCE_KINDS)}, got {source!r}"
        )
    known = {f.name for f in dataclasses.fields(TypeSettings)} - {"name", "s3"}
    if source == "s3":
        known |= S3_KEYS
    for key in raw:
        if key not in known:
            raise ConfigError(f"{prefix}.{key}: unknown key (known: {', '.join(sorted(known))})")
    s3 = None
    if source == "s3":
        try:
            s3 = parse_s3({key: value for key, value in raw.items() if key in S3_KEYS})
        except ValueError as error:
            raise ConfigError(f"{prefix}.{error}") from None
    url = optional_text(f"{prefix}.url", raw.get("url"))
    regex = optional_text(f"{prefix}.regex", raw.get("regex"))
    if source == "web" and url is None and regex is not None:
        # The seed server's README wrote trusted_web types this way.
        source = "trusted_web"
        warnings.append(
            f"{prefix}: 'source: web' with a regex and no url is read as 'source: trusted_web'"
        )
    if source == "web":
        if url is None or "{name}" not in url:
            raise ConfigError(f"{prefix}.url: a web type needs a url template containing {{name}}")
        if urlsplit(url.replace("{name}", "x")).scheme not in ("http", "https"):
            raise ConfigError(f"{prefix}.url: must be an http(s) URL, got {url!r}")
        if "{name}" in urlsplit(url).netloc:
            raise ConfigError(f"{prefix}.url: {{name}} may not be part of the host")
    if source == "trusted_web":
        if regex is None:
            raise ConfigError(f"{prefix}.regex: a trusted_web type needs a regex of allowed URLs")
        try:
            re.compile(regex)
        except re.error as error:
            raise ConfigError(f"{prefix}.regex: not a valid regular expression: {error}") from None
    ttl = raw.get("ttl")
    return TypeSettings(
        name=name,
        source=source,
        url=url,
        regex=regex,
        ttl=None if ttl is None else seconds(f"{prefix}.ttl", ttl),
        rights=optional_text(f"{prefix}.rights", raw.get("rights")),
        attribution=optional_text(f"{prefix}.attribution", raw.get("attribution")),
        logo=optional_text(f"{prefix}.logo", raw.get("logo")),
        s3=s3,
    )


def _types(key: str, raw: Any, warnings: list[str]) -> dict[str, TypeSettings]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: must be a mapping of type name to settings")
    if not raw:
        warnings.append(f"{key}: no types are configured: every identifier is a 404")
    return {str(name): _type_settings(str(name), value, warnings) for name, value in raw.items()}


def _image_cache_size(key: str, value: Any, values: dict[str, Any]) -> None:
    """A bare integer counts images, as in the seed server; a size with a unit is bytes."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        values[key] = None if value is None else integer(1)(key, value)
        return
    if "image_cache_max_bytes" in values:
        raise ConfigError(f"{key}: a size in bytes here and image_cache_max_bytes: give one")
    values["image_cache_max_bytes"] = positive_bytes(key, value)


def from_mapping(raw: Mapping[str, Any]) -> Settings:
    """Validate a mapping of settings (from YAML and the environment) into `Settings`."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    # The byte budget first: a byte size under image_cache_size_per_process may not repeat it.
    keys = sorted(raw, key=lambda k: k != "image_cache_max_bytes")
    for key in keys:
        value = raw[key]
        if key == "types":
            values[key] = _types(key, value, warnings)
        elif key == "image_cache_size_per_process":
            _image_cache_size(key, value, values)
        elif key in _CHECKS:
            values[key] = _CHECKS[key](key, value)
        else:
            raise ConfigError(f"{key}: unknown configuration key")
    if "types" in values and "default_type" not in values:
        # The built-in default type belongs to the built-in types: a file that
        # names its own types has identifiers without a colon unknown.
        values["default_type"] = None
    settings = Settings(**values, warnings=tuple(warnings))
    if settings.default_type is not None and settings.default_type not in settings.types:
        raise ConfigError(
            f"default_type: {settings.default_type!r} is not one of the configured types"
        )
    if settings.metrics_need_token and settings.admin_token is None:
        raise ConfigError("metrics_need_token: needs an admin_token")
    web_types = any(t.source != "disk" for t in settings.types.values())
    share = settings.source_cache_max_bytes // settings.processes
    if web_types and settings.max_source_bytes > share:
        # A download must fit each front process's share of the store that keeps it.
        raise ConfigError("max_source_bytes: must not exceed source_cache_max_bytes / processes")
    return settings


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        try:
            # YAML scalars, so that numbers, booleans and `null` keep their type.
            values[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            values[key] = text
    return values


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overridden by the YAML file at `path`, overridden by the environment."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise ConfigError(f"config file {path}: the top level must be a mapping of keys")
        raw.update(loaded or {})
    raw.update(_env_values(environ or {}))
    return from_mapping(raw)
