"""Several front processes on one port (`processes` > 1), kept running by a small parent.

Each child is a front (HTTP, caches) listening with `SO_REUSEPORT`, so the
kernel spreads connections over them and cached hits use every core. The
worker pools are the parent's, shared by every front (`pool_broker`): one
decode per image, and workers and decoded images not multiplied by the fronts.
The parent restarts children that die and passes SIGTERM/SIGINT on: the fronts
drain first, then the pools stop, so `docker stop` still finishes every request.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess

from . import event_loop
from .background import cancel_and_wait
from .config import Settings
from .metrics import multiprocess as metrics_multiprocess
from .pool_broker import PoolBroker
from .pools import worker_pools
from .workers import WorkerPool

logger = logging.getLogger(__name__)
# A child that keeps dying is restarted at most this often.
_RESTART_DELAY = 1.0
# prctl(2): the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
# How often the parent looks for a front that exited.
_WATCH_EVERY = 0.2
# How old the shared pools' metrics may be (a front's own are as old: metrics.collect).
_COUNT_EVERY = 2.0


def _child_main(settings: Settings, log_level: str, pools: socket.socket, parent: int) -> None:
    from .cli import configure_logging, serve

    _stop_with_parent(parent)
    configure_logging(log_level, settings.log_format)
    event_loop.run(serve(settings, reuse_port=True, pools=pools), settings.event_loop)


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this front SIGTERM when the supervisor dies (Linux).

    Killed outright (OOM, SIGKILL), the supervisor cannot pass the signal on:
    without this its fronts would keep the port and answer 503 for every image,
    next to a restarted server. With it they drain and exit like on `docker stop`.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: a front that loses the pools still answers 503
    if os.getppid() != parent:  # it died before the call
        os.kill(os.getpid(), signal.SIGTERM)


def run(settings: Settings, count: int) -> int:
    # Before any front imports prometheus-client: they count into files of one folder.
    metrics_multiprocess.prepare(settings.cache_path / "metrics")
    event_loop.run(_supervise(settings, count), settings.event_loop)
    return 0


class _Fronts:
    """The front processes, each with its end of a socket pair to the broker."""

    def __init__(self, settings: Settings, broker: PoolBroker, count: int) -> None:
        self._settings = settings
        self._broker = broker
        self._context = multiprocessing.get_context("spawn")
        self.children: list[BaseProcess] = [self._start(i) for i in range(count)]
        self._started = [time.monotonic()] * count

    def _start(self, index: int) -> BaseProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child = self._context.Process(
            target=_child_main,
            args=(self._settings, self._settings.log_level, theirs, os.getpid()),
            name=f"iiif-front-{index}",
        )
        try:
            child.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child's end: only the child may hold it
        self._broker.serve(ours)
        return child

    async def keep_running(self) -> None:
        while True:
            for index, child in enumerate(self.children):
                if child.is_alive() or time.monotonic() - self._started[index] < _RESTART_DELAY:
                    continue
                logger.warning(
                    "front process %s exited (%s); restarting", child.pid, child.exitcode
                )
                if child.pid is not None:
                    metrics_multiprocess.mark_dead(child.pid)
                self.children[index] = self._start(index)
                self._started[index] = time.monotonic()
            await asyncio.sleep(_WATCH_EVERY)

    async def stop(self, timeout: float) -> None:
        """SIGTERM every front (each drains its requests); SIGKILL those still there after."""
        for child in self.children:
            if child.is_alive():
                child.terminate()
        deadline = time.monotonic() + timeout
        while any(c.is_alive() for c in self.children) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for child in self.children:
            if child.is_alive():
                child.kill()
            child.join()


async def _count_pools(pools: tuple[WorkerPool, WorkerPool]) -> None:
    """The shared pools' metrics, counted here once rather than by every front."""
    # Imported here: prometheus-client reads the multiprocess folder when first imported.
    from prometheus_client import CollectorRegistry

    from .metrics.pools import PoolMetrics, cache_lookups, refresh_often

    registry = CollectorRegistry()
    await refresh_often(PoolMetrics(registry, cache_lookups(registry)), pools, _COUNT_EVERY)


async def _supervise(settings: Settings, count: int) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    pools = worker_pools(settings)
    broker = PoolBroker({pool.name: pool for pool in pools})
    for pool in pools:
        pool.start()
    fronts = _Fronts(settings, broker, count)
    watching = asyncio.ensure_future(fronts.keep_running())
    counting = asyncio.ensure_future(_count_pools(pools))
    try:
        await stopping.wait()
    finally:
        await cancel_and_wait(watching)
        await cancel_and_wait(counting)
        # The fronts' requests may still need the workers: the pools stop last.
        await fronts.stop(timeout=settings.image_task_timeout + 15)
        await broker.close()
        for pool in reversed(pools):
            await pool.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
