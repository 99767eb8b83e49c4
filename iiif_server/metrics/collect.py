"""The server's metrics, kept current from the counters each layer already has.

The layers count in plain integers (no Prometheus in the caches, sources or
pools); `refresh` adds what changed since the last refresh to the Prometheus
counters and sets the gauges. A front refreshes right before answering
`/metrics` and, when there are several fronts, every `interval` seconds, so
each one's files are at most that old. The pools' metrics are `pools.PoolMetrics`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from tornado.web import RequestHandler

from ..background import cancel_and_wait
from ..logs import api_label
from ..workers import WorkerPool
from . import multiprocess
from .pools import Deltas, PoolMetrics, cache_lookups

if TYPE_CHECKING:
    from ..app import Server

logger = logging.getLogger(__name__)

# Request durations: a cached tile takes a millisecond, a cold render of a large image seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    name = "metrics"

    def __init__(self, server: Server, *, interval: float = 2.0) -> None:
        self._server = server
        self.interval = interval
        # Our own registry: a second Server in one process (tests) registers afresh.
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "iiif_http_request_duration_seconds",
            "Requests by API (handler) and status, with their duration",
            ["api", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.cache = cache_lookups(self.registry)
        # The pools of this front, or none: the supervisor counts the shared ones.
        self.pools = None
        if isinstance(server.image_pool, WorkerPool):
            self.pools = PoolMetrics(self.registry, self.cache)
        self.fetches = Counter(
            "iiif_web_fetches", "Downloads of web sources by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.covers = Counter(
            "iiif_cover_lookups", "Identifiers asked of cover providers, by outcome",
            ["provider", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.renders = Counter(
            "iiif_renders", "Derivatives made by the image pool (found in no cache)",
            registry=self.registry,
        )  # fmt: skip
        self.shared_errors = Counter(
            "iiif_shared_errors", "Failed requests to a shared tier (derivatives, redis)",
            ["tier"], registry=self.registry,
        )  # fmt: skip
        # Bounded: handler classes times the statuses they answer.
        self._request_children: dict[tuple[type, int], Any] = {}
        self._deltas = Deltas()
        self._task: asyncio.Task[None] | None = None

    # ---- the product face ------------------------------------------------------

    async def start(self) -> None:
        # Alone, a front refreshes when scraped; with others, any of them may be scraped.
        if multiprocess.enabled():
            self._task = asyncio.ensure_future(self._refresh_often())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def routes(self) -> list[tuple[str, Any, dict[str, Any]]]:
        from ..handlers.metrics import MetricsHandler

        settings = self._server.settings
        token = settings.admin_token if settings.metrics_need_token else None
        return [(r"/metrics", MetricsHandler, {"metrics": self, "token": token})]

    def health(self) -> dict[str, Any]:
        return {"multiprocess": multiprocess.enabled()}

    # ---- observing and exposing ------------------------------------------------

    def observe(self, handler: RequestHandler) -> None:
        """One finished request (from the application's `log_request`)."""
        key = (type(handler), handler.get_status())
        child = self._request_children.get(key)
        if child is None:  # labels() takes a lock and builds its key: once per key, not per request
            child = self.requests.labels(api_label(handler), str(key[1]))
            self._request_children[key] = child
        child.observe(handler.request.request_time())

    async def exposition(self) -> bytes:
        """The text of `/metrics`: every front's counts when there are several."""
        await self.refresh()
        if not multiprocess.enabled():
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    async def refresh(self) -> None:
        self._refresh_front()
        if self.pools is not None:
            await self.pools.refresh(self._server.size_pool, self._server.image_pool)

    async def _refresh_often(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:
                logger.exception("metrics: refresh failed")

    def _refresh_front(self) -> None:
        server = self._server
        service = server.service
        derivatives = server.derivatives
        infos = service.infos
        lookups = [
            ("hot", service.hot_hits, service.hot_misses),
            ("disk", derivatives.hits, derivatives.misses),
            ("info", infos.hits, infos.misses),
        ]
        self._count(self.renders, ("renders",), service.renders)
        shared = server.shared
        if shared is not None and shared.derivatives is not None:
            tier = shared.derivatives
            lookups.append(("shared", tier.hits, tier.misses))
            self._count(self.shared_errors.labels("derivatives"), ("shared", 0), tier.link.errors)
        if shared is not None and shared.redis is not None and shared.infos is not None:
            lookups.append(("shared_info", shared.infos.hits, shared.infos.misses))
            self._count(self.shared_errors.labels("redis"), ("shared", 1), shared.redis.link.errors)
        for cache, hits, misses in lookups:
            self._count(self.cache.labels(cache, "hit"), ("cache", cache, "hit"), hits)
            self._count(self.cache.labels(cache, "miss"), ("cache", cache, "miss"), misses)
        for outcome, total in service.fetcher.outcomes.items():
            self._count(self.fetches.labels(outcome), ("fetch", outcome), total)
        for (provider, outcome), total in server.covers.lookups.items():
            self._count(self.covers.labels(provider, outcome), ("cover", provider, outcome), total)

    def _count(self, child: Any, key: Any, total: float) -> None:
        increment = self._deltas.step(key, total)
        if increment:
            child.inc(increment)
