"""The lookup product's face to the server: start, stop, routes and its part of `/health`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tornado.ioloop import PeriodicCallback

from ..background import cancel_and_wait
from ..products import Route
from .config import LookupSettings
from .leader import TICK, Leader
from .listings import Listings


class LookupProduct:
    name = "lookup"

    def __init__(self, settings: LookupSettings, cache_path: Path) -> None:
        self.settings = settings
        self.folder = cache_path / "lookup"
        self.listings = Listings(settings, self.folder)
        self.leader = Leader(settings, self.folder, self.listings.refresh)
        self._watch: PeriodicCallback | None = None
        self._leading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.listings.refresh()  # the last good listings answer at once, editor up or not
        # Other processes' syncs land as a renamed file: a stat a second notices them.
        self._watch = PeriodicCallback(self.listings.refresh, TICK * 1000)
        self._watch.start()
        self._leading = asyncio.create_task(self.leader.run())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        await cancel_and_wait(self._leading)
        self.leader.release()
        self.listings.close()

    def routes(self) -> list[Route]:
        from ..handlers.lookup import routes

        return routes(self.settings, self.listings)

    def health(self) -> dict[str, Any]:
        return {"leader": self.leader.leading, "schemes": self.listings.status()}
