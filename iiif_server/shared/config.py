"""The settings of the shared tiers: `shared_cache` (an S3 bucket) and `shared_info` (Redis).

`shared_cache: {url: s3://bucket/prefix/, endpoint_url: ..., region: ...,
access_key_id: ..., secret_access_key: ...}`: the bucket and prefix come from the
URL, every other key is an `s3` type's (`sources/s3_config.py`). The timeouts are
short by default: a missing shared derivative is rendered, so waiting for a slow
store costs more than it can save.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..sources.s3_config import S3Settings, parse_s3

SHARED_CONNECT_TIMEOUT = 0.5
SHARED_TIMEOUT = 2.0


def parse_shared_cache(raw: Any) -> S3Settings | None:
    """None for null (not shared); ValueError naming the key (`url: ...`) for anything
    that is not a usable bucket."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError("must be a mapping with a url (s3://bucket/prefix)")
    url = raw.get("url")
    if not isinstance(url, str):
        raise ValueError("url: must be s3://bucket/prefix")
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"url: must be s3://bucket/prefix, got {url!r}")
    prefix = parts.path.strip("/")
    fields = {key: value for key, value in raw.items() if key != "url"}
    if "bucket" in fields or "prefix" in fields:
        raise ValueError("url: gives the bucket and prefix; no bucket or prefix key besides")
    fields.setdefault("connect_timeout", SHARED_CONNECT_TIMEOUT)
    fields.setdefault("timeout", SHARED_TIMEOUT)
    unknown = set(fields) - {
        "endpoint_url",
        "region",
        "access_key_id",
        "secret_access_key",
        "connect_timeout",
        "timeout",
    }
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown key")
    return parse_s3({**fields, "bucket": parts.netloc, "prefix": prefix + "/" if prefix else ""})


def parse_shared_info(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"must be a redis:// URL, got {raw!r}")
    return raw
