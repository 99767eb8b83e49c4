"""`processes: 2` and the `purge` command: a purge received by one front reaches the other."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.live import REPO, LiveServer, live_server, wait_for_fronts
from tests.purge.same_stat import replace_unseen, write_padded

TOKEN = "a-long-enough-admin-token-for-tests"
INFO = "/iiif/3/red/info.json"
TILE = "/iiif/3/red/full/60,/0/default.png"


def answers(server: LiveServer, count: int = 24) -> set[tuple[int, tuple[int, ...]]]:
    """(info width, tile colour) of `count` requests, each a new connection (either front)."""
    seen = set()
    for _ in range(count):
        status, _, info = server.get(INFO)
        assert status == 200
        status, _, tile = server.get(TILE)
        assert status == 200
        colour = Image.open(io.BytesIO(tile)).convert("RGB").getpixel((5, 5))
        assert isinstance(colour, tuple)  # an RGB pixel: its three channels
        seen.add((json.loads(info)["width"], tuple(round(c, -1) for c in colour)))
    return seen


def healths(server: LiveServer) -> dict[int, dict[str, int]]:
    """The purge counters of each front process, by pid."""
    found: dict[int, dict[str, int]] = {}
    for _ in range(200):
        health = json.loads(server.get("/health")[2])
        found[health["process"]] = health["purge"]
        if len(found) == 2:
            break
    return found


def test_a_purge_reaches_both_front_processes(tmp_path: Path) -> None:
    sample = tmp_path / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    write_padded(sample / "red.jpg", Image.new("RGB", (600, 400), (200, 30, 30)))
    env = {"IIIF_SERVER_PROCESSES": "2", "IIIF_SERVER_ADMIN_TOKEN": TOKEN}
    with live_server(tmp_path, env=env) as server:
        wait_for_fronts(server, 2)
        assert answers(server) == {(600, (200, 30, 30))}  # cached by both by now
        replace_unseen(sample / "red.jpg", Image.new("RGB", (400, 600), (0, 200, 0)))
        assert answers(server) == {(600, (200, 30, 30))}  # nothing can see the change

        command = subprocess.run(
            [sys.executable, "-m", "iiif_server", "purge", "red"],
            env={"IIIF_SERVER_ADMIN_TOKEN": TOKEN, "IIIF_SERVER_HTTP_PORT": str(server.port),
                 "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert command.returncode == 0, command.stderr
        assert "purged sample:red" in command.stdout
        assert "applied by 1 other front process" in command.stdout

        # Answered only once the other front applied it too: no waiting here.
        counters = sorted(healths(server).values(), key=lambda c: c["received"])
        assert counters == [{"received": 0, "followed": 1}, {"received": 1, "followed": 0}]
        assert answers(server) == {(400, (0, 200, 0))}
