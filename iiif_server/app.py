"""The running server: pools, caches and the Tornado application, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import tornado.web

from .access_log import AccessLog
from .cache import DerivativeCache
from .config import Settings
from .covers.service import CoverService
from .handlers.base import NotFoundHandler
from .handlers.covers import routes as cover_routes
from .handlers.iiif import routes as iiif_routes
from .handlers.lookup import redirects_first
from .handlers.status import HealthHandler
from .logs import access_log
from .lookup.product import LookupProduct
from .metrics.collect import Metrics
from .pool_client import PoolLink, remote_pools
from .pools import Pool, worker_pools
from .products import Product
from .purge.product import purge_product
from .resources.product import ResourcesProduct
from .service import ImageService
from .shared.tiers import SharedTiers

logger = logging.getLogger(__name__)


class ServerApplication(tornado.web.Application):
    """A Tornado application that knows how many requests are in flight, for a clean stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        self.settings.get("log_function", access_log)(handler)
        metrics = self.settings.get("metrics")
        if metrics is not None:
            metrics.observe(handler)

    def request_started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True when every request finished within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class Server:
    """Everything one front process owns. Nothing is built at import time."""

    def __init__(self, settings: Settings, pools: socket.socket | None = None) -> None:
        self.settings = settings
        # Several fronts share the supervisor's pools (pool_broker); one front owns its own.
        self.size_pool: Pool
        self.image_pool: Pool
        link = None if pools is None else PoolLink(pools)
        if link is None:
            self.size_pool, self.image_pool = worker_pools(settings)
        else:
            self.size_pool, self.image_pool = remote_pools(settings, link)
        self.derivatives = DerivativeCache(
            # Front processes share the folder; their budgets together bound it.
            settings.cache_path / "derivatives",
            settings.cache_max_bytes // settings.processes,
        )
        self.covers = CoverService.from_settings(settings.covers, settings.cache_path)
        self.shared: SharedTiers | None = None
        if settings.shared_cache is not None or settings.shared_info is not None:
            self.shared = SharedTiers(
                settings.shared_cache,
                settings.shared_info,
                settings.source_path,
                settings.cache_path,
            )
        self.service = ImageService(
            settings, self.size_pool, self.image_pool, self.derivatives, self.covers, self.shared
        )
        if link is not None:
            self.service.share_sessions(link)
        # The other products, in route order (one mounted at `/` goes last).
        self.products: list[Product] = []
        if self.shared is not None:
            self.products.append(self.shared)
        if settings.admin_token is not None:
            self.products.append(purge_product(settings, self))
        self.metrics = Metrics(self)
        self.products.append(self.metrics)
        if settings.lookup.enabled:
            self.products.append(LookupProduct(settings.lookup, settings.cache_path))
        # Last: its mount may be `/`, which matches every path the others leave.
        self.products.append(
            ResourcesProduct(
                settings.resources, self.image_pool, self.derivatives, settings.max_source_pixels
            )
        )
        self.access_log = AccessLog()

    async def start(self) -> None:
        """Load the derivative index and start the pools; call inside the running loop."""
        self.derivatives.load()
        self.size_pool.start()
        self.image_pool.start()
        await self.size_pool.wait_ready()
        await self.image_pool.wait_ready()
        await self.covers.start()
        for product in self.products:
            await product.start()

    async def stop(self, grace: float = 10.0) -> None:
        for product in reversed(self.products):
            await product.stop()
        await self.covers.close()
        await self.image_pool.close(grace)
        await self.size_pool.close(grace)
        await self.derivatives.flush()  # derivatives still being written land on disk
        self.derivatives.close()
        self.access_log.flush()

    def make_app(self, **tornado_settings: Any) -> ServerApplication:
        handlers: list[Any] = [
            (r"/health", HealthHandler, {"server": self}),
            *cover_routes(self.covers),  # first: the cheapest to match, and the busiest
            *iiif_routes(self.service, self.settings),
            *(route for product in self.products for route in product.routes()),
        ]
        tornado_settings.setdefault("log_function", self.access_log)
        return ServerApplication(
            redirects_first(handlers),
            default_handler_class=NotFoundHandler,
            metrics=self.metrics,
            **tornado_settings,
        )
