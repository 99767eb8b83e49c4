"""Several front processes on one port (`processes` > 1), kept running by a small parent.

Each child is a whole server (its own pools and caches) listening with
`SO_REUSEPORT`, so the kernel spreads connections over them and cached hits
use every core. The parent only restarts children that die and passes
SIGTERM/SIGINT on, so `docker stop` still drains every child.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from .config import Settings
from .metrics import multiprocess as metrics_multiprocess

logger = logging.getLogger(__name__)
# A child that keeps dying is restarted at most this often.
_RESTART_DELAY = 1.0


def _child_main(settings: Settings, log_level: str) -> None:
    from .cli import configure_logging, serve

    configure_logging(log_level, settings.log_format)
    asyncio.run(serve(settings, reuse_port=True))


def run(settings: Settings, count: int) -> int:
    # Before any front imports prometheus-client: they count into files of one folder.
    metrics_multiprocess.prepare(settings.cache_path / "metrics")
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}

    def start(index: int) -> BaseProcess:
        child = context.Process(
            target=_child_main, args=(settings, settings.log_level), name=f"iiif-front-{index}"
        )
        child.start()
        return child

    children = [start(i) for i in range(count)]
    started = [time.monotonic()] * count
    try:
        while not stopping:
            for index, child in enumerate(children):
                if child.is_alive() or stopping:
                    continue
                if time.monotonic() - started[index] < _RESTART_DELAY:
                    continue
                logger.warning(
                    "front process %s exited (%s); restarting", child.pid, child.exitcode
                )
                if child.pid is not None:
                    metrics_multiprocess.mark_dead(child.pid)
                children[index] = start(index)
                started[index] = time.monotonic()
            time.sleep(0.2)
    finally:
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: the child drains its requests
        for child in children:
            child.join(timeout=settings.image_task_timeout + 15)
            if child.is_alive():
                child.kill()
                child.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
