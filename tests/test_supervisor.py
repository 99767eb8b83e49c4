"""`processes: 2`: two front processes share the port, a dead one is replaced."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

from tests.conftest import TEST_IMAGE, TEST_IMAGE_ID
from tests.live import live_server


def front_pids(parent: int) -> set[int]:
    """Children of the supervisor: the front processes (not their pools' workers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    # multiprocessing's resource tracker is a child too.
    return {int(pid) for pid in children if "resource_tracker" not in _cmdline(int(pid))}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_two_front_processes_serve_and_recover(tmp_path: Path) -> None:
    sample = tmp_path / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    shutil.copy(TEST_IMAGE, sample)
    with live_server(tmp_path, env={"IIIF_SERVER_PROCESSES": "2"}) as server:
        # Both fronts listening: each new connection may reach either (the kernel's choice).
        answering: set[int] = set()
        deadline = time.monotonic() + 60
        while len(answering) < 2 and time.monotonic() < deadline:
            answering.add(json.loads(server.get("/health")[2])["process"])
        assert len(answering) == 2
        answered_by: set[str] = set()
        for _ in range(40):
            status, _, body = server.get(f"/iiif/3/{TEST_IMAGE_ID}/full/100,/0/default.jpg")
            assert status == 200 and body
        time.sleep(0.2)
        log = server.log.read_text()
        for line in log.splitlines():
            if "GET /iiif/3/" in line:
                answered_by.add(line.split()[2])  # the process id in each log line
        # The kernel spreads new connections over both (each request is a new connection).
        assert len(answered_by) == 2
        fronts = front_pids(server.process.pid)
        assert len(fronts) == 2
        victim = min(fronts)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = front_pids(server.process.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the killed front process was not replaced")
        for _ in range(10):
            assert server.get(f"/iiif/3/{TEST_IMAGE_ID}/info.json")[0] == 200
    assert server.process.returncode == 0
