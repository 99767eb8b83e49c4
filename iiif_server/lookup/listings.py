"""The listings a front process answers from: a mapped index per scheme, swapped when a file lands.

Queries run on the event loop and never await, so swapping the reference
and closing the old map between two of them is atomic for every query: a
query sees the old listing or the new one, never half of each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import NotFound, Unavailable
from .config import LookupSettings
from .index import CorruptIndex, Index
from .state import STATUS_FILE, SchemeStatus, index_path, read_status

logger = logging.getLogger(__name__)


class NoListingYet(Unavailable):
    """A scheme whose listing was never loaded: not "no such book", but "ask again soon"."""

    retry_after = 30


class Listings:
    def __init__(self, settings: LookupSettings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.indexes: dict[str, Index] = {}
        self.statuses: dict[str, SchemeStatus] = {}
        self._status_identity: tuple[int, int] | None = None

    def refresh(self) -> None:
        """Map index files that changed since the last look, and re-read the shared status."""
        for scheme in self.settings.schemes:
            path = index_path(self.folder, scheme)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            current = self.indexes.get(scheme)
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if current is not None and current.identity == identity:
                continue
            try:
                fresh = Index(path)
            except (OSError, CorruptIndex, ValueError) as error:
                logger.error("lookup: cannot map %s, keeping the last listing: %s", path, error)
                continue
            self.indexes[scheme] = fresh
            if current is not None:
                current.close()
        self._refresh_status()

    def _refresh_status(self) -> None:
        try:
            stat = (self.folder / STATUS_FILE).stat()
        except FileNotFoundError:
            return
        if (stat.st_ino, stat.st_mtime_ns) != self._status_identity:
            self._status_identity = (stat.st_ino, stat.st_mtime_ns)
            self.statuses = read_status(self.folder)

    def resolve(self, scheme: str, mode: str, identifier: str) -> str | None:
        """The redirect target, or None for a 404; `NoListingYet` before a first listing."""
        index = self.indexes.get(scheme)
        if index is None:
            if scheme in self.settings.schemes:
                raise NoListingYet(f"the {scheme} listing has not been loaded yet")
            raise NotFound(f"no such scheme: {scheme}")
        present, url = index.url(identifier, mode)
        if url is None and not present:
            template = self.settings.fallback.get(mode)
            if template is not None:
                return template.replace("{scheme}", quote(scheme, safe="")).replace(
                    "{id}", quote(identifier, safe="")
                )
        return url

    def status(self) -> dict[str, Any]:
        """Per scheme: the shared status, and whether this process has a listing mapped."""
        document = {}
        for scheme in self.settings.schemes:
            status = self.statuses.get(scheme, SchemeStatus())
            index = self.indexes.get(scheme)
            document[scheme] = {
                **status.document(),
                "loaded": index is not None,
                "ids": index.ids if index is not None else 0,
            }
        return document

    def close(self) -> None:
        for index in self.indexes.values():
            index.close()
        self.indexes.clear()
