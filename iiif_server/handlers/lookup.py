"""The lookup product's HTTP: `M/{scheme}/{mode}/{id}` redirects, `M/` the sync status."""

from __future__ import annotations

import re
from typing import Any

from tornado.escape import url_unescape
from tornado.httputil import HTTPServerRequest
from tornado.routing import Matcher

from ..lookup.config import LookupSettings
from ..lookup.listings import Listings
from ..products import Route
from .base import BaseHandler


class LookupPath(Matcher):
    """`{prefix}/{scheme}/{mode}/{id}` by string operations: the busiest route, matched cheaply.

    It matches what `{prefix}/([^/]+)/([^/]+)/([^/]+)` would, and hands the handler the
    same arguments, but without a regex and percent-decoding only segments that have a `%`
    (for the others Tornado's decoding gives the segment itself).
    """

    def __init__(self, prefix: str, schemes: frozenset[str] | None) -> None:
        self.prefix = prefix + "/"
        self.schemes = schemes  # None: any scheme (the handler answers 404 for unknown ones)

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        path = request.path
        if not path.startswith(self.prefix):
            return None
        parts = path[len(self.prefix) :].split("/")
        if len(parts) != 3 or "" in parts:
            return None
        if self.schemes is not None and parts[0] not in self.schemes:
            return None
        arguments = [url_unescape(part, None, False) if "%" in part else part for part in parts]
        return {"path_args": arguments, "path_kwargs": {}}


class LookupHandler(BaseHandler):
    def initialize(self, listings: Listings, cache_control: str) -> None:
        self.listings = listings
        self.cache_control = cache_control

    def get(self, scheme: str, mode: str, identifier: str) -> None:
        target = self.listings.resolve(scheme, mode, identifier)
        # Straight into the headers, past set_header's checks: the Cache-Control value is
        # our own, and redirect targets were validated at sync (absolute http(s) URLs
        # without control characters) or are a validated fallback with quoted parts.
        headers = self._headers
        # Short-lived either way: the next sync may add the book or move it.
        headers["Cache-Control"] = self.cache_control
        if target is None:
            self.set_status(404)
            headers["Content-Type"] = "text/plain; charset=utf-8"
            self.finish(f"404 Not Found: no {mode} URL for {scheme} {identifier}\n")
            return
        self.set_status(302)
        headers["Location"] = target
        headers["Content-Length"] = "0"
        self.finish()

    head = get


class LookupStatusHandler(BaseHandler):
    def initialize(self, listings: Listings) -> None:
        self.listings = listings

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish({"schemes": self.listings.status()})

    head = get


def routes(settings: LookupSettings, listings: Listings) -> list[Route]:
    """At `/` only the configured schemes match, so that other paths reach later products."""
    root = "" if settings.mount == "/" else settings.mount
    schemes = frozenset(settings.schemes) if not root else None
    query: dict[str, Any] = {
        "listings": listings,
        "cache_control": f"public, max-age={settings.max_age}",
    }
    return [
        (rf"{re.escape(root)}/?", LookupStatusHandler, {"listings": listings}),
        (LookupPath(root, schemes), LookupHandler, query),
    ]


def redirects_first(routes: list[Any]) -> list[Any]:
    """The server's routes with the lookup's redirects moved to the front when that is safe.

    They are the busiest requests, and Tornado tries routes in order. Safe: under a mount
    of its own, which no route before it could match (compared by the fixed start of
    their patterns); at `/`, or under `/iiif` say, the order stays as it was.
    """
    position = next(
        (at for at, route in enumerate(routes) if isinstance(route[0], LookupPath)), None
    )
    if position is None or routes[position][0].schemes is not None:
        return routes
    prefix = routes[position][0].prefix
    for earlier, handler, _ in routes[:position]:
        if handler is LookupStatusHandler:  # `{mount}/` only
            continue
        if not isinstance(earlier, str):
            return routes
        start = re.match(r"[^\\^$.|?*+()\[\]{}]*", earlier)
        fixed = start.group() if start else ""
        if fixed.startswith(prefix) or prefix.startswith(fixed):
            return routes
    return [routes[position], *routes[:position], *routes[position + 1 :]]
