"""The settings of an `s3` type: bucket, prefix, endpoint, region, credentials, timeouts.

They sit in the type's own mapping next to `source: s3`. Parsing raises `ValueError`
naming the key (`bucket: ...`); the server's `config.py` turns that into a
`ConfigError` naming `types.{type}.bucket`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Bucket names as S3 allows them (3-63 of lowercase letters, digits, '.', '-').
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9-]+")


@dataclass(frozen=True, kw_only=True)
class S3Settings:
    bucket: str
    prefix: str = ""  # `{prefix}{name}` is the object key; empty or ending in '/'
    endpoint_url: str | None = None  # None: AWS itself, https://s3.{region}.amazonaws.com
    region: str = "us-east-1"
    # None: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; neither: unsigned requests.
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 2.0  # seconds; an unreachable store is a quick 502
    timeout: float = 30.0  # seconds for one request, header read or whole download (504)

    @property
    def base_url(self) -> str:
        """The endpoint requests go to, path-style (`{base_url}/{bucket}/{key}`)."""
        return (self.endpoint_url or f"https://s3.{self.region}.amazonaws.com").rstrip("/")


S3_KEYS = frozenset(f.name for f in dataclasses.fields(S3Settings))


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: must be a non-empty string, got {value!r}")
    return value


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{key}: must be a positive number of seconds, got {value!r}")
    return float(value)


def parse_s3(raw: Mapping[str, Any]) -> S3Settings:
    """The s3 keys of one type's mapping (other keys are the caller's business)."""
    if "bucket" not in raw:
        raise ValueError("bucket: an s3 type needs the bucket its images are in")
    bucket = _text("bucket", raw["bucket"])
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"bucket: not a valid S3 bucket name, got {bucket!r}")
    prefix = raw.get("prefix") or ""
    if not isinstance(prefix, str) or "\x00" in prefix or (prefix and not prefix.endswith("/")):
        raise ValueError(f"prefix: must be empty or end with '/', got {prefix!r}")
    if prefix.startswith("/") or any(part in (".", "..") for part in prefix.split("/")):
        raise ValueError(f"prefix: must not start with '/' or hold '.' or '..', got {prefix!r}")
    endpoint = raw.get("endpoint_url")
    if endpoint is not None:
        endpoint = _text("endpoint_url", endpoint)
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"endpoint_url: must be an http(s) URL, got {endpoint!r}")
    region = _text("region", raw.get("region", "us-east-1"))
    if not _REGION.fullmatch(region):
        raise ValueError(f"region: not a region name, got {region!r}")
    key_id = raw.get("access_key_id")
    secret = raw.get("secret_access_key")
    if (key_id is None) != (secret is None):
        raise ValueError("access_key_id: give both access_key_id and secret_access_key, or neither")
    return S3Settings(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region=region,
        access_key_id=None if key_id is None else _text("access_key_id", key_id),
        secret_access_key=None if secret is None else _text("secret_access_key", secret),
        connect_timeout=_seconds("connect_timeout", raw.get("connect_timeout", 2.0)),
        timeout=_seconds("timeout", raw.get("timeout", 30.0)),
    )
