"""`sessions.ZoomSessions`: which images viewers are on, and the decodes started ahead."""

from __future__ import annotations

import asyncio

import pytest

from iiif_server.iiif.image import ImageInfo
from iiif_server.iiif.params import Limits
from iiif_server.iiif.request import ImageRequest, parse_image_request
from iiif_server.sessions import MAX_UNUSED_PREPARED, ZoomSessions, coarse_key
from iiif_server.workers import Job
from tests.test_service import Peers

BIG = ImageInfo(6000, 4000, "JPEG", "RGB")
SMALL = ImageInfo(800, 600, "JPEG", "RGB")


class FakePool:
    """Records the jobs offered; takes them only while `idle`."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.idle = True
        self.offered: list[list[Job]] = []

    async def submit_if_idle(self, *jobs: Job) -> bool:
        self.offered.append(list(jobs))
        return self.idle


def request(info: ImageInfo, region: str, size: str, quality_format: str) -> ImageRequest:
    limits = Limits(10**5, 10**5, 10**10, False)
    return parse_image_request(3, region, size, "0", quality_format, info, limits)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_the_first_info_json_of_a_session_counts_and_is_told_to_the_other_fronts() -> None:
    sessions, peers = ZoomSessions(FakePool()), Peers()
    sessions.share(peers)
    assert not sessions.in_session("a")
    assert sessions.described("a")
    assert not sessions.described("a")  # the viewer asked again: same session
    assert sessions.in_session("a") and peers.announced == ["a"]
    assert peers.listener is not None
    peers.listener("b")  # described on another front
    assert sessions.in_session("b") and not sessions.described("b")
    assert peers.announced == ["a"]


@pytest.mark.gen_test
async def test_a_big_jpeg_is_decoded_whole_in_one_worker_and_coarse_in_another() -> None:
    pool = FakePool(size=2)
    sessions = ZoomSessions(pool)
    sessions.prepare("big", "/p/big.jpg", "v1", BIG)
    await settle()
    (jobs,) = pool.offered
    assert [job.fn.__name__ for job in jobs] == ["prepare", "prepare_coarse"]
    assert [job.affinity for job in jobs] == ["big", coarse_key("big")]
    assert [job.light for job in jobs] == [False, True]


@pytest.mark.parametrize(
    ("size", "info"), [(1, BIG), (2, SMALL)], ids=["one worker", "small image"]
)
@pytest.mark.gen_test
async def test_one_worker_or_a_small_image_gets_the_whole_decode_alone(
    size: int, info: ImageInfo
) -> None:
    pool = FakePool(size)
    ZoomSessions(pool).prepare("k", "/p/k.jpg", "v1", info)
    await settle()
    assert [[job.fn.__name__ for job in jobs] for jobs in pool.offered] == [["prepare"]]


@pytest.mark.gen_test
async def test_only_plain_jpegs_are_decoded_ahead() -> None:
    pool = FakePool()
    ZoomSessions(pool).prepare("k", "/p/k.png", "v1", ImageInfo(6000, 4000, "PNG", "RGB"))
    await settle()
    assert pool.offered == []


@pytest.mark.gen_test
async def test_decodes_no_tile_followed_stop_new_ones_until_a_tile_is_asked_for() -> None:
    pool = FakePool()
    sessions = ZoomSessions(pool)
    for number in range(MAX_UNUSED_PREPARED + 2):
        sessions.prepare(f"k{number}", f"/p/{number}.jpg", "v1", SMALL)
    await settle()
    assert len(pool.offered) == MAX_UNUSED_PREPARED  # a harvester: then nothing
    sessions.followed("k0")  # a viewer asked for a tile of one
    sessions.prepare("k9", "/p/9.jpg", "v1", SMALL)
    await settle()
    assert len(pool.offered) == MAX_UNUSED_PREPARED + 1


@pytest.mark.gen_test
async def test_a_decode_the_busy_pool_skipped_does_not_count() -> None:
    pool = FakePool()
    pool.idle = False
    sessions = ZoomSessions(pool)
    for number in range(MAX_UNUSED_PREPARED + 2):
        sessions.prepare(f"k{number}", f"/p/{number}.jpg", "v1", SMALL)
        await settle()
    assert len(pool.offered) == MAX_UNUSED_PREPARED + 2  # every one was offered


def test_coarse_jpeg_tiles_prefer_the_worker_of_the_coarse_decode() -> None:
    sessions = ZoomSessions(FakePool())
    coarse = request(BIG, "full", "375,", "default.jpg")  # 1/16
    quarter = request(BIG, "0,0,2048,2048", "512,", "default.jpg")  # 1/4
    half = request(BIG, "0,0,1024,1024", "512,", "default.jpg")  # 1/2
    png = request(BIG, "full", "375,", "default.png")
    assert sessions.preferred("big", BIG, coarse) == coarse_key("big")
    assert sessions.preferred("big", BIG, quarter) == coarse_key("big")
    assert sessions.preferred("big", BIG, half) is None
    assert sessions.preferred("big", BIG, png) is None
