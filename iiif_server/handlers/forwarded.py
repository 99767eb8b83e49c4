"""The public URL a client used, for info.json `id` and Link headers.

A configured `base_url` wins; otherwise the `X-Forwarded-*` headers a proxy
sets, falling back to the request itself. Mirador compares `id` with the URL
it fetched, string for string, so scheme, host, port and prefix all matter.
"""

from __future__ import annotations

import re

from tornado.httputil import HTTPServerRequest

_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Header values end up inside JSON and Link headers: keep them to URL characters.
_SAFE_HOST = re.compile(r"[A-Za-z0-9.\-\[\]:_]+")
_SAFE_PREFIX = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%\-]+)*")


def _first(value: str | None) -> str | None:
    """Proxies chained together send comma-separated lists: the first is the client's."""
    if not value:
        return None
    first = value.split(",")[0].strip()
    return first or None


def public_root(request: HTTPServerRequest, base_url: str | None) -> str:
    """`scheme://host[:port][/prefix]` without a trailing slash."""
    if base_url:
        return base_url
    headers = request.headers
    scheme = (_first(headers.get("X-Forwarded-Proto")) or request.protocol).lower()
    if scheme not in _DEFAULT_PORTS:
        scheme = request.protocol
    host = _first(headers.get("X-Forwarded-Host")) or request.host
    if not _SAFE_HOST.fullmatch(host):
        host = request.host
    port = _first(headers.get("X-Forwarded-Port"))
    if port and port.isdigit():
        host = re.sub(r":\d+$", "", host)
        if port != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{port}"
    prefix = _first(headers.get("X-Forwarded-Prefix")) or _first(headers.get("X-Forwarded-Path"))
    prefix = "/" + prefix.strip("/") if prefix and prefix.strip("/") else ""
    if not _SAFE_PREFIX.fullmatch(prefix):
        prefix = ""
    return f"{scheme}://{host}{prefix}"
