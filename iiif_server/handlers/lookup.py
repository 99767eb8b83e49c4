"""The lookup product's HTTP: `M/{scheme}/{mode}/{id}` redirects, `M/` the sync status."""

from __future__ import annotations

import re
from typing import Any

from ..lookup.config import LookupSettings
from ..lookup.listings import Listings
from ..products import Route
from .base import BaseHandler


class LookupHandler(BaseHandler):
    def initialize(self, listings: Listings, cache_control: str) -> None:
        self.listings = listings
        self.cache_control = cache_control

    def get(self, scheme: str, mode: str, identifier: str) -> None:
        target = self.listings.resolve(scheme, mode, identifier)
        # Short-lived either way: the next sync may add the book or move it.
        self.set_header("Cache-Control", self.cache_control)
        if target is None:
            self.set_status(404)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"404 Not Found: no {mode} URL for {scheme} {identifier}\n")
            return
        self.set_status(302)
        self.set_header("Location", target)
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
    root = "" if settings.mount == "/" else re.escape(settings.mount)
    if root:
        scheme = "([^/]+)"
    else:
        scheme = "(" + "|".join(re.escape(name) for name in settings.schemes) + ")"
    query: dict[str, Any] = {
        "listings": listings,
        "cache_control": f"public, max-age={settings.max_age}",
    }
    return [
        (rf"{root}/?", LookupStatusHandler, {"listings": listings}),
        (rf"{root}/{scheme}/([^/]+)/([^/]+)", LookupHandler, query),
    ]
