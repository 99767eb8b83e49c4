"""`event_loop`: the server on uvloop (the default) and on asyncio's loop, fronts and pools."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from PIL import Image

from iiif_server import event_loop
from tests import worker_tasks as tasks
from tests.live import live_server
from tests.test_workers import make_pool


async def kind_inside() -> str:
    return event_loop.running_kind()


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_run_runs_on_the_loop_asked_for(kind: str) -> None:
    assert event_loop.run(kind_inside(), kind) == kind


async def big_answers() -> list[int]:
    async with make_pool(size=1) as pool:
        await pool.wait_ready()
        return [len(await pool.submit(tasks.echo, b"x" * 8_000_000)) for _ in range(3)]


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_a_pool_reads_answers_much_bigger_than_a_pipe_on_either_loop(kind: str) -> None:
    """uvloop makes the pipes it watches non-blocking: an 8 MB answer, read as it
    comes through a 64 KB pipe, failed halfway as from a dying worker, and the task
    waited for ever."""
    sizes = event_loop.run(asyncio.wait_for(big_answers(), 30), kind)
    assert sizes == [8_000_000] * 3


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_a_zoom_session_and_big_answers_work_on_either_loop(
    tmp_path: Path, kind: str, processes: str
) -> None:
    """Fronts, the supervisor's pools and the decode ahead, on each loop."""
    sample = tmp_path / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    Image.effect_noise((2400, 1600), 40).convert("RGB").save(sample / "big.jpg", quality=90)
    env = {"IIIF_SERVER_EVENT_LOOP": kind, "IIIF_SERVER_PROCESSES": processes}
    with live_server(tmp_path, env=env) as server:
        status, _, body = server.get("/health")
        assert status == 200 and json.loads(body)["event_loop"] == kind
        assert server.get("/iiif/3/big/info.json")[0] == 200  # decodes ahead
        for tile in ("full/300,/0/default.jpg", "0,0,1024,1024/512,/0/default.jpg"):
            assert server.get(f"/iiif/3/big/{tile}", timeout=20)[0] == 200
        status, headers, body = server.get("/iiif/3/big/full/max/0/default.png", timeout=20)
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert len(body) > 1_000_000  # many times a pipe's 64 KB
