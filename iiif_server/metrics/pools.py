"""Metrics of the worker pools, counted by the process that owns them.

A single front owns its pools and counts them with its other metrics; with
`processes` > 1 the supervisor owns the shared pools and counts them itself
(into the same multiprocess folder), so that no front counts them again.
Decoded-image counters live in the image workers: a refresh asks every worker
for them (one broadcast task) and counts per worker pid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..imaging.render import decoded_cache_stats

if TYPE_CHECKING:
    from ..pools import Pool

logger = logging.getLogger(__name__)
# How long a refresh waits for the workers' counters (they answer after their queue).
_WORKER_WAIT = 2.0


class Deltas:
    """Turns running totals into increments: what a Prometheus counter is given."""

    def __init__(self) -> None:
        self._last: dict[Any, float] = {}

    def step(self, key: Any, total: float) -> float:
        last = self._last.get(key, 0.0)
        self._last[key] = total
        return total - last if total >= last else total  # a reset: it started again

    def keep_only(self, keys: set[Any]) -> None:
        for key in set(self._last) - keys:
            del self._last[key]


def cache_lookups(registry: CollectorRegistry) -> Counter:
    return Counter(
        "iiif_cache_lookups",
        "Cache lookups by cache (hot, disk, info, decoded, shared, shared_info)"
        " and result (hit, miss)",
        ["cache", "result"],
        registry=registry,
    )


class PoolMetrics:
    def __init__(self, registry: CollectorRegistry, lookups: Counter) -> None:
        self._lookups = lookups
        self.queued = Gauge(
            "iiif_pool_queued_tasks", "Tasks waiting for a worker", ["pool"],
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.busy = Gauge(
            "iiif_pool_busy_workers", "Workers running a task", ["pool"],
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.live = Gauge(
            "iiif_pool_workers", "Workers started and ready", ["pool"],
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.restarts = Counter(
            "iiif_pool_worker_restarts", "Workers started to replace others", ["pool"],
            registry=registry,
        )  # fmt: skip
        self._deltas = Deltas()
        self._decoded = Deltas()

    async def refresh(self, size_pool: Pool, image_pool: Pool) -> None:
        for pool in (size_pool, image_pool):
            status = pool.status()
            self.queued.labels(status.name).set(status.queued)
            self.busy.labels(status.name).set(status.busy)
            self.live.labels(status.name).set(status.live)
            increment = self._deltas.step(status.name, status.restarts)
            if increment:
                self.restarts.labels(status.name).inc(increment)
        # Busy workers: their counts come with the next refresh.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._refresh_decoded(image_pool), _WORKER_WAIT)

    async def _refresh_decoded(self, image_pool: Pool) -> None:
        answers: Sequence[Any] = await image_pool.broadcast(decoded_cache_stats)
        workers: set[Any] = set()
        for stats in answers:
            if not isinstance(stats, Mapping) or "pid" not in stats:
                continue
            for result, field in (("hit", "hits"), ("miss", "misses")):
                key = (stats["pid"], result)
                workers.add(key)
                self._lookups.labels("decoded", result).inc(self._decoded.step(key, stats[field]))
        self._decoded.keep_only(workers)  # workers replaced since: forgotten


async def refresh_often(metrics: PoolMetrics, pools: Sequence[Pool], interval: float) -> None:
    """The supervisor's loop: the shared pools' metrics, at most `interval` old."""
    size_pool, image_pool = pools
    while True:
        try:
            await metrics.refresh(size_pool, image_pool)
        except Exception:
            logger.exception("metrics: refresh of the pools failed")
        await asyncio.sleep(interval)
