"""AWS Signature Version 4 for the few S3 requests the server makes.

GETs of one object (sources), and the PUTs, DELETEs and listings of the shared
derivative tier (`shared/`).

Written out rather than taken from botocore: signing a GET is a few HMACs, and the
requests themselves go through Tornado's client like every other fetch (see s3.py for
why). Spec: "Authenticating Requests (AWS Signature Version 4)" in the S3 API reference.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

_ALGORITHM = "AWS4-HMAC-SHA256"
# The SHA-256 of an empty body (GET, DELETE, listings).
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def object_path(bucket: str, key: str) -> str:
    """The path-style URL path of `key` in `bucket`, encoded as S3 canonicalizes it."""
    return "/" + quote(bucket, safe="") + "/" + quote(key, safe="/-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign_get(
    url: str,
    region: str,
    credentials: Credentials | None,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """`headers` plus those that authenticate a GET of `url` (already encoded, no
    query); every header given is signed. Without credentials: unsigned (a public bucket).
    """
    return sign("GET", url, region, credentials, headers, now=now)


def sign(
    method: str,
    url: str,
    region: str,
    credentials: Credentials | None,
    headers: Mapping[str, str] | None = None,
    *,
    payload_sha256: str = EMPTY_SHA256,
    now: datetime | None = None,
) -> dict[str, str]:
    """`sign_get` for any method; a query in `url` must already be canonical (its
    parameters sorted and encoded as S3 does), and `payload_sha256` is the body's hash."""
    parts = urlsplit(url)
    headers = {**(headers or {}), "x-amz-content-sha256": payload_sha256}
    if credentials is None:
        return headers
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers["x-amz-date"] = stamp
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    signed = {"host": parts.netloc.lower(), **{k.lower(): v for k, v in headers.items()}}
    names = sorted(signed)
    canonical = "\n".join(
        (
            method,
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{signed[name].strip()}\n" for name in names),
            ";".join(names),
            payload_sha256,
        )
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        (_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers
