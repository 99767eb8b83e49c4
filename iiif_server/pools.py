"""The two worker pools of a server (size probes, images): built in one place.

A single front process owns them (`app.Server`); with `processes` > 1 the
supervisor owns them and serves them to every front (`pool_broker`), which
sees them through `pool_client.RemotePool`. Both kinds have the face `Pool`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .config import Settings
from .imaging.render import configure_worker
from .imaging.warm_up import exercise_codecs
from .workers import Job, PoolStatus, WorkerPool

T = TypeVar("T")


class Pool(Protocol):
    """What the front uses of a pool, local (`WorkerPool`) or shared (`RemotePool`)."""

    name: str
    size: int

    def start(self) -> None: ...

    async def submit(
        self, fn: Callable[..., T], *args: Any, affinity: str | None = None, light: bool = False
    ) -> T: ...

    async def submit_if_idle(self, *jobs: Job) -> bool: ...

    async def broadcast(self, fn: Callable[..., T], *args: Any) -> list[T | None]: ...

    async def wait_ready(self) -> None: ...

    async def close(self, grace: float = 10.0) -> None: ...

    def status(self) -> PoolStatus: ...

    @property
    def pids(self) -> list[int]: ...


def worker_pools(settings: Settings) -> tuple[WorkerPool, WorkerPool]:
    """The size pool and the image pool, not started."""
    size_pool = WorkerPool(
        "size",
        settings.size_pool_size,
        task_timeout=settings.size_task_timeout,
        max_queue=settings.max_queue_per_worker,
        initializer=exercise_codecs,
    )
    image_pool = WorkerPool(
        "image",
        settings.image_pool_size,
        task_timeout=settings.image_task_timeout,
        max_queue=settings.max_queue_per_worker,
        initializer=configure_worker,
        initargs=(
            settings.image_cache_max_bytes,
            settings.max_source_pixels,
            settings.image_cache_size_per_process,
        ),
    )
    return size_pool, image_pool
