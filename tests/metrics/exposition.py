"""Reading samples out of a Prometheus text exposition."""

from __future__ import annotations

import re


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name{labels}` of an exposition (labels in any order); 0 if absent."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0
