"""`iiif-server warm IDENTIFIER...`: make the advertised tiles and sizes ahead of viewers.

Runs the server's own pools and caches without HTTP; a running server on the
same `cache_path` finds the results (it adopts files it did not write).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from .app import Server
from .config import Settings
from .errors import ServerError
from .iiif.pyramid import advertised_requests
from .service import Derivative

logger = logging.getLogger(__name__)


@dataclass
class WarmReport:
    identifier: str
    made: int = 0
    already: int = 0
    error: str | None = None
    seconds: float = 0.0


async def warm(settings: Settings, identifiers: list[str]) -> list[WarmReport]:
    server = Server(settings)
    await server.start()
    try:
        return [await _warm_one(server, identifier) for identifier in identifiers]
    finally:
        await server.stop()


async def _warm_one(server: Server, identifier: str) -> WarmReport:
    report = WarmReport(identifier)
    started = time.monotonic()
    service = server.service
    try:
        image = await service.resolve(identifier)
        plans = [
            service.plan(image, 3, region, size, "0", "default.jpg")
            for region, size in advertised_requests(image.info, service.info_options(image))
        ]
        missing = [plan for plan in plans if service.cached(plan) is None]
        report.already = len(plans) - len(missing)
        # The pool's queue is bounded: keep a few in flight, not all at once.
        limit = asyncio.Semaphore(server.settings.max_queue_per_worker)

        async def make(plan: Derivative) -> None:
            async with limit:
                await service.render(plan)

        await asyncio.gather(*(make(plan) for plan in missing))
        report.made = len(missing)
    except ServerError as error:
        report.error = f"{error.status}: {error}"
    report.seconds = time.monotonic() - started
    return report
