"""`processes: 2`: /metrics from either front counts the requests of both; JSON logs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tests.conftest import TEST_IMAGE, TEST_IMAGE_ID
from tests.live import live_server, wait_for_fronts
from tests.metrics.exposition import value

INFO = f"/iiif/3/{TEST_IMAGE_ID}/info.json"


def test_both_fronts_are_counted_and_logs_are_json(tmp_path: Path) -> None:
    sample = tmp_path / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    shutil.copy(TEST_IMAGE, sample)
    env = {
        "IIIF_SERVER_PROCESSES": "2",
        "IIIF_SERVER_LOG_FORMAT": "json",
        "IIIF_SERVER_IMAGE_POOL_SIZE": "2",
    }
    with live_server(tmp_path, env=env) as server:
        wait_for_fronts(server, 2)
        for _ in range(30):
            assert server.get(INFO)[0] == 200  # each a new connection: either front

        def requests_counted() -> float:
            text = server.get("/metrics")[2].decode()
            return value(text, "iiif_http_request_duration_seconds_count", api="info", status="200")

        # A front counts a request just after its answer has left: the last may come late.
        deadline = time.monotonic() + 5
        while requests_counted() < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        counted = {requests_counted() for _ in range(16)}
        # Cache counts: each front copies its own into the shared files every 2 s.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = server.get("/metrics")[2].decode()
            lookups = sum(
                value(text, "iiif_cache_lookups_total", cache="info", result=result)
                for result in ("hit", "miss")
            )
            if lookups == 30:
                break
            time.sleep(0.2)
        assert lookups == 30  # one info lookup a request, whichever front served it
        # The pools are the supervisor's, shared: counted once (by it), not once a front.
        for turn in (0, 90, 180, 270):  # four renders, each on either front, one decode
            assert server.get(f"/iiif/3/{TEST_IMAGE_ID}/full/max/{turn}/default.png")[0] == 200
        deadline = time.monotonic() + 20
        decoded = {}
        while time.monotonic() < deadline:
            text = server.get("/metrics")[2].decode()
            decoded = {
                result: value(text, "iiif_cache_lookups_total", cache="decoded", result=result)
                for result in ("hit", "miss")
            }
            if sum(decoded.values()) == 4:
                break
            time.sleep(0.2)
        assert decoded == {"hit": 3, "miss": 1}
        assert value(text, "iiif_pool_workers", pool="image") == 2
        assert value(text, "iiif_pool_workers", pool="size") == 1
        time.sleep(0.2)
        log = server.log.read_text().splitlines()
    assert counted == {30.0}  # every scrape, whichever front answered, sums both

    records = [json.loads(line) for line in log if line.startswith("{")]
    access = [r for r in records if r["logger"] == "tornado.access" and r["path"] == INFO]
    assert len(access) == 30
    fronts = {r["process"] for r in access}
    assert len(fronts) == 2  # the info requests were served by both fronts
    scrapers = {r["process"] for r in records if r.get("path") == "/metrics"}
    assert scrapers == fronts  # and so were the scrapes
    assert all(r["status"] == 200 and r["api"] == "info" for r in access)
    assert all(r["duration_ms"] >= 0 and r["method"] == "GET" for r in access)
    assert not [line for line in log if line.strip() and not line.startswith("{")]
