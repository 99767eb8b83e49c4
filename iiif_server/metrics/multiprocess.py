"""prometheus-client's multiprocess mode for `processes: N`.

Each front process writes its values to its own memory-mapped files in one
folder, and whichever front answers `/metrics` sums the files of all of them.
The client chooses the mode when it is first imported, from the environment
variable `PROMETHEUS_MULTIPROC_DIR`: the supervisor sets it (and empties the
folder) before any front starts, and no module imports the client before that.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
logger = logging.getLogger(__name__)


def prepare(default: Path) -> Path:
    """Choose the folder (the environment's, else `default`), empty it, export it."""
    folder = Path(os.environ.get(ENV) or default)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # counts of an earlier run
        with suppress(OSError):
            stale.unlink()
    os.environ[ENV] = str(folder)
    return folder


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def mark_dead(pid: int) -> None:
    """A front process exited: its live gauges (queue depth, busy workers) stop counting."""
    if not enabled():
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except OSError as error:
        logger.warning("metrics: cannot retire process %d: %s", pid, error)
