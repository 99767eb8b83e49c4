"""A real server with `processes: 2`: the editor is asked once, and both processes answer alike."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.live import REPO, live_server
from tests.lookup.conftest import BOOKS, SCHEME
from tests.lookup.fake_editor import FakeEditor, wait_for

BOOK = "fairerthandayfo00hugggoog"


def redirect(port: int, path: str) -> tuple[int, str | None]:
    """Status and Location, without following (urllib would)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Location")
    finally:
        connection.close()


def test_two_processes_sync_once_and_answer_from_one_listing(
    editor: FakeEditor, tmp_path: Path
) -> None:
    lookup = {"listing_url": editor.template, "schemes": [SCHEME], "interval": 3600}
    env = {
        "IIIF_SERVER_PROCESSES": "2",
        "IIIF_SERVER_IMAGE_POOL_SIZE": "1",
        "IIIF_SERVER_LOOKUP": json.dumps(lookup),
    }
    with live_server(tmp_path, env) as server:
        leaders: dict[int, bool] = {}  # by front pid

        def both_loaded() -> bool:
            health = json.loads(server.get("/health")[2])
            if health["lookup"]["schemes"][SCHEME]["loaded"]:
                leaders[health["process"]] = health["lookup"]["leader"]
            return len(leaders) == 2

        wait_for(both_loaded, timeout=60)
        assert editor.count(SCHEME) == 1
        assert sorted(leaders.values()) == [False, True]
        assert redirect(server.port, f"/lookup/{SCHEME}/epub/{BOOK}") == (302, BOOKS[BOOK]["epub"])

        editor.listings[SCHEME] = {BOOK: {"epub": "https://render.example/new.epub"}}
        environment = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-m", "iiif_server", "lookup", "sync"],
            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{SCHEME}: changed: 1 ids: 0 added, 1 removed, 1 changed")

        def everyone_answers_new() -> bool:
            answers = {redirect(server.port, f"/lookup/{SCHEME}/epub/{BOOK}") for _ in range(10)}
            return answers == {(302, "https://render.example/new.epub")}

        wait_for(everyone_answers_new)
        assert editor.count(SCHEME) == 2
