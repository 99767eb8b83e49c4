"""Walking one config section's keys: shared by the products' own settings parsers.

A product's package cannot import `config.py` (which imports it), so the loop
lives here: each key has a check `(key, value) -> value`; an unknown key is a
`ValueError` naming it, which `config.py` prefixes with the section's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[str, Any], Any]


def checked_values(raw: Mapping[str, Any], checks: Mapping[str, Check]) -> dict[str, Any]:
    """Every key of `raw` through its check; an unknown key raises `ValueError('key: ...')`."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        check = checks.get(key)
        if check is None:
            raise ValueError(f"{key}: unknown key (known: {', '.join(checks)})")
        values[key] = check(key, value)
    return values
