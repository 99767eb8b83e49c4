"""The checks every settings value goes through: numbers, seconds, sizes, texts, paths.

Each takes the key (for its message) and the raw value from YAML or the
environment, and returns the value typed or raises `ConfigError` naming the
key (`parse_bytes` also serves the products' own settings).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def integer(low: int, high: int | None = None) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"{key}: must be {bounds}, got {value}")
        return value

    return check


def seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key}: must be a positive number of seconds, got {value!r}")
    return float(value)


def seconds_or_zero(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key}: must be a number of seconds (0 or more), got {value!r}")
    return float(value)


def positive_bytes(key: str, value: Any) -> int:
    size = parse_bytes(key, value)
    if size < 1:
        raise ConfigError(f"{key}: must be at least one byte, got {value!r}")
    return size


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, got {value!r}")
    return value


def nonempty_text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
    return value


def optional_text(key: str, value: Any) -> str | None:
    return None if value is None else nonempty_text(key, value)


def path_value(key: str, value: Any) -> Path:
    return Path(nonempty_text(key, value))


def parse_bytes(key: str, value: Any, *, bare_unit: int = 1) -> int:
    """`512MB`, `2 GiB`, `1000` (times `bare_unit`) -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value * bare_unit
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if match and match.group(2).lower() in _BYTE_UNITS:
            unit = _BYTE_UNITS[match.group(2).lower()] if match.group(2) else bare_unit
            return int(float(match.group(1)) * unit)
    raise ConfigError(f"{key}: must be a size such as 512MB or 2GiB, got {value!r}")


def section(parse: Callable[[Any], Any]) -> Callable[[str, Any], Any]:
    """A product's own parser; its `ValueError('sub.key: why')` names `key.sub.key`."""

    def check(key: str, value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as error:
            message = str(error)
            raise ConfigError(
                f"{key}.{message}" if ": " in message else f"{key}: {message}"
            ) from None

    return check
