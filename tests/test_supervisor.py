"""`processes: 2`: two front processes on one port, sharing the supervisor's worker pools."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

from PIL import Image

from tests.live import LiveServer, live_server, wait_for_fronts

TOKEN = "a-long-enough-admin-token-for-tests"
ENV = {
    "IIIF_SERVER_PROCESSES": "2",
    "IIIF_SERVER_IMAGE_POOL_SIZE": "2",
    "IIIF_SERVER_SIZE_POOL_SIZE": "1",
    "IIIF_SERVER_ADMIN_TOKEN": TOKEN,
}
# Sixteen derivatives of one image, each made from its whole decode.
VARIANTS = [
    f"/iiif/3/big/full/max/{rotation}/{quality}.jpg"
    for rotation in ("0", "90", "180", "270", "!0", "!90", "!180", "!270")
    for quality in ("default", "gray")
]


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found |= {child, *descendants(child)}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def pools_of(server: LiveServer) -> tuple[int, dict[str, list[int]]]:
    """(front pid, pool name -> worker pids) from /health of whichever front answers."""
    health = json.loads(server.get("/health")[2])
    return health["process"], {pool["name"]: pool["pids"] for pool in health["pools"]}


def fronts_in_log(server: LiveServer, path_part: str) -> set[str]:
    """The pids of the fronts that logged a request for `path_part`."""
    time.sleep(0.3)  # access log lines are written after the answer
    lines = server.log.read_text().splitlines()
    return {line.split()[2] for line in lines if f"GET {path_part}" in line}


def purge(server: LiveServer, identifier: str) -> dict[str, int]:
    request = urllib.request.Request(
        f"{server.url}/admin/purge?identifier={identifier}",
        method="POST",
        data=b"",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        report: dict[str, int] = json.loads(answer.read())
        return report


def make_source(tmp_path: Path) -> None:
    sample = tmp_path / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    Image.effect_noise((900, 600), 50).convert("RGB").save(sample / "big.jpg", quality=90)


def test_fronts_share_one_set_of_workers_and_decode_an_image_once(tmp_path: Path) -> None:
    make_source(tmp_path)
    with live_server(tmp_path, env=ENV) as server:
        fronts = wait_for_fronts(server, 2)
        seen = {}
        for _ in range(40):
            front, pools = pools_of(server)
            seen[front] = pools
        assert set(seen) == fronts
        [first, second] = seen.values()
        assert first == second  # one set of workers, the supervisor's
        assert (len(first["size"]), len(first["image"])) == (1, 2)
        workers = set(first["size"]) | set(first["image"])
        assert workers.isdisjoint(fronts)
        assert workers | fronts <= descendants(server.process.pid)

        bodies = {}
        for path in VARIANTS:  # each a new connection: either front
            status, _, bodies[path] = server.get(path)
            assert status == 200
        assert len(fronts_in_log(server, "/iiif/3/big/full/max/")) == 2
        for path in VARIANTS:  # through both fronts again (from the caches now): the same bytes
            assert server.get(path)[2] == bodies[path]

        # Sixteen renders through both fronts, one decode: the purge finds it in one worker.
        report = purge(server, "big")
        assert report["purges"] == 1 and report["decoded"] == 1
        assert purge(server, "big")["decoded"] == 0  # gone from the shared workers
        assert pools_of(server)[1] == first  # and the workers are the same


def test_a_killed_front_is_replaced_and_sigterm_stops_every_process(tmp_path: Path) -> None:
    make_source(tmp_path)
    with live_server(tmp_path, env=ENV) as server:
        fronts = wait_for_fronts(server, 2)
        _, workers = pools_of(server)
        victim = min(fronts)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "the killed front process was not replaced"
            try:
                now = wait_for_fronts(server, 2)
            except OSError:  # a connection queued at the killed front
                continue
            if victim not in now:
                break
            time.sleep(0.2)
        # The new front renders through the same workers (none restarted). The kernel
        # spreads connections by a hash: ask until both fronts have answered.
        for attempt in range(40):
            assert server.get(VARIANTS[attempt % len(VARIANTS)])[0] == 200
            if attempt >= 5 and len(fronts_in_log(server, "/iiif/3/big/full/max/")) == 2:
                break
        assert fronts_in_log(server, "/iiif/3/big/full/max/") == {str(pid) for pid in now}
        assert pools_of(server)[1] == workers
        everything = descendants(server.process.pid)
        assert everything >= now | set(workers["image"]) | set(workers["size"])
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in everything) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in everything if alive(pid)]
    log = server.log.read_text()
    assert re.search(r"front process \d+ exited \(-9\); restarting", log)
    assert "Traceback" not in log


def test_fronts_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """No orphan keeps the port: a restarted server would share it with fronts
    that have no pools left."""
    make_source(tmp_path)
    with live_server(tmp_path, env=ENV) as server:
        fronts = wait_for_fronts(server, 2)
        everything = descendants(server.process.pid)
        assert everything > fronts
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in everything) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in everything if alive(pid)]
        try:
            server.get("/health")
        except OSError:
            pass  # nothing listens any more
        else:
            raise AssertionError("a front still answers after its supervisor died")
