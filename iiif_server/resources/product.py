"""The resources product's face for the server: start, stop, routes, health."""

from __future__ import annotations

from typing import Any

from ..cache import DerivativeCache
from ..handlers.resources import routes
from ..products import Route
from ..service import TaskRunner
from .config import ResourcesSettings
from .service import ResourceService


class ResourcesProduct:
    name = "resources"

    def __init__(
        self,
        settings: ResourcesSettings,
        image_pool: TaskRunner,
        derivatives: DerivativeCache,
        max_pixels: int,
    ) -> None:
        self.settings = settings
        self.service = ResourceService(settings, image_pool, derivatives, max_pixels)

    async def start(self) -> None:
        self.service.start()

    async def stop(self) -> None:
        await self.service.stop()

    def routes(self) -> list[Route]:
        return [] if self.settings.root is None else routes(self.service)

    def health(self) -> dict[str, Any]:
        return self.service.health()
