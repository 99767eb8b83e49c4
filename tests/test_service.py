"""The service end to end through HTTP: caches, single flight, crashes, timeouts, overload."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from iiif_server.app import Server
from iiif_server.config import Settings
from iiif_server.imaging.render import decoded_cache_stats
from iiif_server.workers import Job, WorkerPool
from tests.conftest import make_settings

pytestmark = pytest.mark.gen_test(timeout=60)
# Seconds of work for one worker: a big upscale, an arbitrary rotation and a PNG encode.
SLOW = "/iiif/3/big/full/^5000,/33/default.png"


@pytest.fixture
def big_source(source_path: Path) -> Path:
    path = source_path / "sample" / "big.jpg"
    Image.effect_noise((3000, 3000), 60).convert("RGB").save(path, quality=90)
    return path


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


@pytest.fixture
def settings(tmp_path: Path, source_path: Path, overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, source_path, **overrides)


async def get(client: AsyncHTTPClient, base_url: str, path: str) -> HTTPResponse:
    return await client.fetch(base_url + path, raise_error=False, request_timeout=60)


def count_calls(pool: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    submit = pool.submit

    async def counting(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await submit(fn, *args, **kwargs)

    monkeypatch.setattr(pool, "submit", counting)
    return calls


async def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def until_idle(server: Server) -> None:
    """Until every image worker is ready and has no work (its decodes ahead done)."""
    pool = server.image_pool
    assert isinstance(pool, WorkerPool)  # one front process: the server owns its pools
    await wait_for(lambda: pool.idle())


async def test_identical_concurrent_requests_are_computed_once(
    http_client: AsyncHTTPClient, base_url: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = count_calls(server.image_pool, monkeypatch)
    paths = ["/iiif/3/red/full/200,/0/default.jpg", "/iiif/2/red/full/200,/0/default.jpg",
             "/iiif/3/red/0,0,600,400/200,133/0/color.jpg"] * 3  # fmt: skip
    responses = await asyncio.gather(*(get(http_client, base_url, p) for p in paths))
    assert {r.code for r in responses} == {200}
    assert len({r.body for r in responses}) == 1
    assert len(renders) == 1


async def test_cached_hits_and_info_need_no_pool(
    http_client: AsyncHTTPClient, base_url: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = "/iiif/3/red/full/100,/0/default.jpg"
    first = await get(http_client, base_url, path)
    await get(http_client, base_url, "/iiif/3/red/info.json")

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pool was used")

    monkeypatch.setattr(server.image_pool, "submit", refuse)
    monkeypatch.setattr(server.size_pool, "submit", refuse)
    again = await get(http_client, base_url, path)
    assert again.code == 200 and again.body == first.body
    assert (await get(http_client, base_url, "/iiif/3/red/info.json")).code == 200


async def test_info_is_probed_again_when_the_file_changes(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    probes = count_calls(server.size_pool, monkeypatch)
    for _ in range(3):
        response = await get(http_client, base_url, "/iiif/3/red/info.json")
        assert b'"width":600' in response.body
    assert len(probes) == 1
    Image.new("RGB", (640, 480), (10, 200, 10)).save(source_path / "sample" / "red.jpg")
    response = await get(http_client, base_url, "/iiif/3/red/info.json")
    assert b'"width":640' in response.body
    assert len(probes) == 2
    image = await get(http_client, base_url, "/iiif/3/red/full/max/0/default.png")
    assert Image.open(io.BytesIO(image.body)).size == (640, 480)


@pytest.mark.parametrize("overrides", [{"cache_max_bytes": 40_000}], indirect=True)
async def test_derivative_cache_stays_under_its_budget(
    http_client: AsyncHTTPClient, base_url: str, server: Server, tmp_path: Path
) -> None:
    for width in range(100, 600, 25):
        response = await get(http_client, base_url, f"/iiif/3/red/full/{width},/0/default.png")
        assert response.code == 200
        assert server.derivatives.total_bytes <= 40_000
    await server.derivatives.flush()  # the writes wait for a quiet moment
    derivatives = tmp_path / "cache" / "derivatives"
    on_disk = sum(p.stat().st_size for p in derivatives.rglob("*") if p.is_file())
    assert 0 < on_disk <= 40_000


async def test_a_killed_worker_fails_one_request_and_is_replaced(
    http_client: AsyncHTTPClient, base_url: str, server: Server, big_source: Path
) -> None:
    await get(http_client, base_url, "/iiif/3/big/info.json")
    await until_idle(server)  # its decode ahead is done
    slow = asyncio.ensure_future(get(http_client, base_url, SLOW))
    await wait_for(lambda: server.image_pool.status().busy == 1)
    [pid] = server.image_pool.pids
    os.kill(pid, signal.SIGKILL)
    response = await slow
    assert response.code in (500, 503)
    assert b"Traceback" not in response.body
    after = await get(http_client, base_url, "/iiif/3/red/full/50,/0/default.jpg")
    assert after.code == 200
    assert server.image_pool.pids != [pid]


@pytest.mark.parametrize("overrides", [{"image_task_timeout": 0.3}], indirect=True)
async def test_a_task_past_its_time_limit_gets_503_and_the_pool_carries_on(
    http_client: AsyncHTTPClient, base_url: str, server: Server, big_source: Path
) -> None:
    response = await get(http_client, base_url, SLOW)
    assert response.code == 503
    assert response.headers["Retry-After"]
    assert (await get(http_client, base_url, "/iiif/3/red/full/50,/0/default.jpg")).code == 200


@pytest.mark.parametrize("overrides", [{"max_queue_per_worker": 1}], indirect=True)
async def test_full_queues_answer_503_with_retry_after(
    http_client: AsyncHTTPClient, base_url: str, server: Server, big_source: Path
) -> None:
    await get(http_client, base_url, "/iiif/3/big/info.json")
    await until_idle(server)  # its decode ahead is done
    paths = [f"/iiif/3/big/full/^{4000 + i},/{30 + i}/default.png" for i in range(4)]
    responses = await asyncio.gather(*(get(http_client, base_url, p) for p in paths))
    codes = sorted(r.code for r in responses)
    assert codes[0] == 200 and codes[-1] == 503
    refused = [r for r in responses if r.code == 503]
    assert all(r.headers["Retry-After"] for r in refused)


@pytest.mark.parametrize("overrides", [{"max_source_pixels": 1_000_000}], indirect=True)
async def test_sources_above_the_pixel_limit_are_refused(
    http_client: AsyncHTTPClient, base_url: str, server: Server, big_source: Path
) -> None:
    for path in ("/iiif/3/big/info.json", "/iiif/3/big/full/100,/0/default.jpg"):
        response = await get(http_client, base_url, path)
        assert response.code == 500
        assert b"pixel" in response.body.lower() or b"large" in response.body.lower()
    assert (await get(http_client, base_url, "/iiif/3/red/info.json")).code == 200


@pytest.mark.parametrize("overrides", [{"allow_upscaling": False}], indirect=True)
async def test_disabled_upscaling(
    http_client: AsyncHTTPClient, base_url: str, server: Server
) -> None:
    assert (await get(http_client, base_url, "/iiif/3/red/full/^700,/0/default.jpg")).code == 501
    assert (await get(http_client, base_url, "/iiif/2/red/full/700,/0/default.jpg")).code == 400
    info = (await get(http_client, base_url, "/iiif/3/red/info.json")).body
    assert b"sizeUpscaling" not in info


async def test_a_changed_source_is_never_served_from_memory(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path
) -> None:
    path = "/iiif/3/red/full/60,/0/default.png"
    before = await get(http_client, base_url, path)
    assert (await get(http_client, base_url, path)).body == before.body  # remembered
    Image.new("RGB", (600, 400), (20, 220, 20)).save(source_path / "sample" / "red.jpg")
    after = await get(http_client, base_url, path)
    assert after.code == 200 and after.body != before.body
    pixel = Image.open(io.BytesIO(after.body)).getpixel((30, 20))
    assert isinstance(pixel, tuple) and pixel[1] > 150  # green now
    assert after.headers["ETag"] != before.headers["ETag"]


async def test_an_info_json_marks_a_zoom_session_for_the_renderer(
    http_client: AsyncHTTPClient, base_url: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = count_calls(server.image_pool, monkeypatch)
    await get(http_client, base_url, "/iiif/3/sample:sub%2Fblue/full/100,/0/default.jpg")
    await get(http_client, base_url, "/iiif/3/red/info.json")
    await get(http_client, base_url, "/iiif/3/red/full/100,/0/default.jpg")
    deep_zoom = [args[-1] for args in renders if len(args) == 6]  # render(); not prepare()
    assert deep_zoom == [False, True]  # a thumbnail alone; then one after its info.json


def record_submits(pool: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions submitted to `pool` from now on."""
    names: list[str] = []
    record(pool, monkeypatch, lambda name, *_: names.append(name))
    return names


def record(
    pool: Any, monkeypatch: pytest.MonkeyPatch, note: Callable[[str, str, str], None]
) -> None:
    """`note(function name, affinity key, preferred key)` for each task submitted to
    `pool` from now on, decodes ahead (`submit_if_idle`) included once the pool took them."""
    submit, submit_if_idle = pool.submit, pool.submit_if_idle

    async def recording(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        note(fn.__name__, kwargs.get("affinity") or "", kwargs.get("prefer") or "")
        return await submit(fn, *args, **kwargs)

    async def recording_if_idle(*jobs: Job) -> bool:
        taken: bool = await submit_if_idle(*jobs)
        for job in jobs if taken else ():
            note(job.fn.__name__, job.affinity or "", "")
        return taken

    monkeypatch.setattr(pool, "submit", recording)
    monkeypatch.setattr(pool, "submit_if_idle", recording_if_idle)


async def test_info_json_of_a_jpeg_starts_its_decode_when_the_workers_are_idle(
    http_client: AsyncHTTPClient, base_url: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted = record_submits(server.image_pool, monkeypatch)
    assert (await get(http_client, base_url, "/iiif/3/red/info.json")).code == 200
    await until_idle(server)
    assert submitted == ["prepare"]
    await get(http_client, base_url, "/iiif/3/red/info.json")  # again: nothing more
    tile = await get(http_client, base_url, "/iiif/3/red/0,0,512,400/512,/0/default.jpg")
    assert tile.code == 200
    assert submitted == ["prepare", "render"]


async def test_no_decode_ahead_while_the_workers_are_busy(
    http_client: AsyncHTTPClient, base_url: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted = record_submits(server.image_pool, monkeypatch)
    monkeypatch.setattr(server.image_pool, "idle", lambda: False)
    assert (await get(http_client, base_url, "/iiif/3/red/info.json")).code == 200
    assert submitted == []


async def test_a_harvester_of_info_json_starts_few_decodes(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for number in range(7):
        Image.new("RGB", (64, 48), (number, 0, 0)).save(source_path / "sample" / f"h{number}.jpg")
    submitted = record_submits(server.image_pool, monkeypatch)
    for number in range(6):
        assert (await get(http_client, base_url, f"/iiif/3/h{number}/info.json")).code == 200
        await until_idle(server)
    assert submitted == ["prepare"] * 4  # then no tile followed: it stops
    await get(http_client, base_url, "/iiif/3/h0/full/32,/0/default.jpg")  # a viewer after all
    await get(http_client, base_url, "/iiif/3/h6/info.json")
    await until_idle(server)
    assert submitted == ["prepare"] * 4 + ["render", "prepare"]


def record_affinities(pool: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """(function name, affinity key, preferred key) of each task submitted to `pool`."""
    calls: list[tuple[str, str, str]] = []
    record(pool, monkeypatch, lambda *call: calls.append(call))
    return calls


@pytest.mark.parametrize("overrides", [{"image_pool_size": 2}], indirect=True)
async def test_a_second_idle_worker_makes_the_first_tiles_of_a_big_jpeg(
    http_client: AsyncHTTPClient, base_url: str, server: Server, big_source: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    calls = record_affinities(server.image_pool, monkeypatch)
    assert (await get(http_client, base_url, "/iiif/3/big/info.json")).code == 200
    await until_idle(server)
    assert [name for name, *_ in calls] == ["prepare", "prepare_coarse"]
    (_, whole, _), (_, coarse, _) = calls
    assert whole != coarse
    tiles = {
        "/iiif/3/big/full/375,/0/default.jpg": coarse,  # the first tiles: coarse levels
        "/iiif/3/big/0,0,2048,2048/512,/0/default.jpg": coarse,
        "/iiif/3/big/0,0,1024,1024/512,/0/default.jpg": "",  # finer: the whole decode
        "/iiif/3/big/0,0,512,512/512,/0/default.jpg": "",
        "/iiif/3/big/full/375,/0/default.png": "",  # not a JPEG of the planes
    }
    for path, preferred in tiles.items():
        assert (await get(http_client, base_url, path)).code == 200
        assert calls[-1] == ("render", whole, preferred), path
    # The coarse tiles were cut where the coarse levels are: that worker decoded nothing
    # whole (3000x3000 4:2:0 planes take 13.5 MB).
    stats = await server.image_pool.broadcast(decoded_cache_stats)
    held = sorted(answer["bytes"] for answer in stats if answer)
    assert len(held) == 2 and 0 < held[0] < 2_000_000 < 13_000_000 < held[1]


async def test_one_worker_decodes_ahead_alone(
    http_client: AsyncHTTPClient, base_url: str, server: Server, big_source: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    calls = record_affinities(server.image_pool, monkeypatch)
    assert (await get(http_client, base_url, "/iiif/3/big/info.json")).code == 200
    await until_idle(server)
    assert [name for name, *_ in calls] == ["prepare"]
    assert (await get(http_client, base_url, "/iiif/3/big/full/375,/0/default.jpg")).code == 200
    assert calls[-1][1] == calls[0][1]


class Peers:
    """The other fronts, as `ImageService.share_sessions` sees them."""

    def __init__(self) -> None:
        self.announced: list[str] = []
        self.listener: Callable[[str], None] | None = None

    def announce(self, key: str) -> None:
        self.announced.append(key)

    def listen(self, described: Callable[[str], None]) -> None:
        self.listener = described


async def test_a_session_described_to_another_front_is_a_session_here(
    http_client: AsyncHTTPClient, base_url: str, server: Server, source_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    peers = Peers()
    server.service.share_sessions(peers)
    renders = count_calls(server.image_pool, monkeypatch)
    assert (await get(http_client, base_url, "/iiif/3/red/info.json")).code == 200
    await get(http_client, base_url, "/iiif/3/red/info.json")
    assert peers.announced == [str(source_path / "sample" / "red.jpg")]  # once

    tile = "/iiif/3/sub%2Fblue/0,0,256,200/256,/0/default.jpg"
    assert (await get(http_client, base_url, tile)).code == 200
    assert peers.listener is not None
    peers.listener(str(source_path / "sample" / "sub" / "blue.png"))  # another front's
    assert (await get(http_client, base_url, tile.replace("256,/", "128,/"))).code == 200
    sessions = [args[-1] for args in renders if len(args) > 5]
    assert sessions == [False, True]  # a render knows it serves a zoom session
