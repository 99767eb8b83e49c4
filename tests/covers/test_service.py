"""The lookup service against fake providers: batching, order, caching, failures, deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from iiif_server.covers.service import CoverService
from iiif_server.covers.store import CacheKey, CoverStore, MemoryStore, SqliteStore
from iiif_server.errors import BadRequest
from tests.covers.fake_provider import FakeProviders

pytestmark = pytest.mark.gen_test(timeout=20)

BOOK = "9780415480635"
BOOK_10 = "0-415-48063-9"
OTHER = "9782266111560"
THIRD = "9780306406157"
NOWHERE = "9791090636071"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def gb_url(fake: FakeProviders, volume: str) -> str:
    return f"{fake.url}/gb/content?id={volume}&printsec=frontcover&img=1&zoom=1&source=gbs_api"


def ol_url(fake: FakeProviders, cover: int) -> str:
    return f"{fake.url}/ol/b/id/{cover}-M.jpg"


async def started(
    fake: FakeProviders,
    store: CoverStore | None = None,
    clock: Clock | None = None,
    **overrides: Any,
) -> CoverService:
    settings = fake.settings(**overrides)
    service = CoverService(settings, store or MemoryStore(1000), clock=clock or time.monotonic)
    await service.start()
    return service


async def test_four_ids_two_providers_one_request_each(fake: FakeProviders) -> None:
    fake.gb.update({BOOK: "v1", OTHER: "v2"})
    fake.ol.update({BOOK: 11, THIRD: 33})
    service = await started(fake)
    try:
        answer = await service.covers([BOOK, OTHER, THIRD, NOWHERE], ("gb", "ol"))
    finally:
        await service.close()
    assert answer == {BOOK: gb_url(fake, "v1"), OTHER: gb_url(fake, "v2"), THIRD: ol_url(fake, 33)}
    assert len(fake.asked("gb")) == 1 and len(fake.asked("ol")) == 1
    assert f"bibkeys=ISBN:{BOOK},ISBN:{OTHER},ISBN:{THIRD},ISBN:{NOWHERE}" in fake.asked("ol")[0]


async def test_provider_order_and_all(fake: FakeProviders) -> None:
    fake.gb[BOOK] = "v1"
    fake.ol.update({BOOK: 11, THIRD: 33})
    service = await started(fake)
    try:
        assert await service.covers([BOOK], ("ol", "gb")) == {BOOK: ol_url(fake, 11)}
        assert await service.covers([BOOK], ("gb", "ol")) == {BOOK: gb_url(fake, "v1")}
        every = await service.covers([BOOK, THIRD, NOWHERE], ("ol", "gb"), all_=True)
    finally:
        await service.close()
    assert every == {
        BOOK: {"ol": ol_url(fake, 11), "gb": gb_url(fake, "v1")},
        THIRD: {"ol": ol_url(fake, 33)},
    }
    assert list(every[BOOK]) == ["ol", "gb"]
    assert len(fake.requests) == 4  # two ids unknown at the third call: one request each


async def test_forms_of_one_book_share_an_entry_and_answer_as_sent(fake: FakeProviders) -> None:
    fake.gb[BOOK] = "v1"
    service = await started(fake)
    try:
        assert await service.covers([BOOK_10, "not-an-isbn"], ("gb",)) == {
            BOOK_10: gb_url(fake, "v1")
        }
        both = await service.covers(["978-0-415-48063-5", "0415480639"], ("gb",))
    finally:
        await service.close()
    assert both == {"978-0-415-48063-5": gb_url(fake, "v1"), "0415480639": gb_url(fake, "v1")}
    assert fake.asked("gb") == [f"/gb/books?bibkeys={BOOK}&jscmd=viewapi&hl=en"]


async def test_concurrent_requests_share_one_provider_request(fake: FakeProviders) -> None:
    fake.gb[BOOK] = "v1"
    service = await started(fake)
    try:
        answers = await asyncio.gather(*(service.covers([BOOK], ("gb",)) for _ in range(5)))
    finally:
        await service.close()
    assert answers == [{BOOK: gb_url(fake, "v1")}] * 5
    assert len(fake.asked("gb")) == 1


async def test_found_covers_expire_after_the_ttl(fake: FakeProviders) -> None:
    clock = Clock()
    fake.gb[BOOK] = "v1"
    service = await started(fake, MemoryStore(100, clock))
    service_settings = service.settings.gb
    try:
        await service.covers([BOOK], ("gb",))
        clock.now += service_settings.ttl - 1
        await service.covers([BOOK], ("gb",))
        assert len(fake.asked("gb")) == 1
        fake.gb[BOOK] = "v2"
        clock.now += 2
        assert await service.covers([BOOK], ("gb",)) == {BOOK: gb_url(fake, "v2")}
    finally:
        await service.close()
    assert len(fake.asked("gb")) == 2


async def test_no_cover_is_remembered_for_the_negative_ttl(fake: FakeProviders) -> None:
    clock = Clock()
    service = await started(fake, MemoryStore(100, clock))
    negative_ttl = service.settings.gb.negative_ttl
    try:
        assert await service.covers([BOOK], ("gb",)) == {}
        clock.now += negative_ttl - 1
        assert await service.covers([BOOK], ("gb",)) == {}
        assert len(fake.asked("gb")) == 1
        fake.gb[BOOK] = "v1"
        clock.now += 2
        assert await service.covers([BOOK], ("gb",)) == {BOOK: gb_url(fake, "v1")}
    finally:
        await service.close()
    assert len(fake.asked("gb")) == 2


@pytest.mark.parametrize("outage", ["fail", "garbage"])
async def test_an_outage_is_not_cached_as_no_cover(fake: FakeProviders, outage: str) -> None:
    fake.gb[BOOK] = "v1"
    fake.ol[BOOK] = 11
    fake.mode["gb"] = outage
    service = await started(fake)
    try:
        # The other provider still answers; the failed one is not remembered at all.
        assert await service.covers([BOOK], ("gb", "ol")) == {BOOK: ol_url(fake, 11)}
        fake.mode["gb"] = "ok"
        assert await service.covers([BOOK], ("gb", "ol")) == {BOOK: gb_url(fake, "v1")}
    finally:
        await service.close()
    assert len(fake.asked("gb")) == 2 and len(fake.asked("ol")) == 1


async def test_the_deadline_answers_with_what_was_found(fake: FakeProviders) -> None:
    fake.mode["gb"] = "hang"
    fake.ol[BOOK] = 11
    service = await started(fake, timeout=300)
    try:
        started_at = time.monotonic()
        answer = await service.covers([BOOK], ("gb", "ol"))
        elapsed = time.monotonic() - started_at
    finally:
        await service.close()
    assert answer == {BOOK: ol_url(fake, 11)}
    assert 0.25 < elapsed < 2  # the hanging provider would have held it until the fake stopped


async def test_a_failing_provider_rests_then_is_tried_again(fake: FakeProviders) -> None:
    clock = Clock()
    fake.mode["gb"] = "fail"
    fake.ol[BOOK] = 11
    service = await started(fake, clock=clock, cooldown_after=2, cooldown=60.0)
    try:
        for _ in range(2):
            assert await service.covers([BOOK], ("gb", "ol")) == {BOOK: ol_url(fake, 11)}
        assert len(fake.asked("gb")) == 2
        for _ in range(3):  # resting: not asked, and the answer does not wait for it
            assert await service.covers([OTHER], ("gb", "ol")) == {}
        assert len(fake.asked("gb")) == 2
        fake.mode["gb"] = "ok"
        fake.gb[THIRD] = "v3"
        clock.now += 61
        assert await service.covers([THIRD], ("gb",)) == {THIRD: gb_url(fake, "v3")}
        assert await service.covers([OTHER], ("gb",)) == {}  # healthy again: asked as usual
    finally:
        await service.close()
    assert len(fake.asked("gb")) == 4


async def test_after_a_rest_one_failure_starts_another(fake: FakeProviders) -> None:
    clock = Clock()
    fake.mode["gb"] = "fail"
    service = await started(fake, clock=clock, cooldown_after=1, cooldown=60.0)
    try:
        await service.covers([BOOK], ("gb",))
        clock.now += 61
        await service.covers([BOOK], ("gb",))  # the trial, failing
        await service.covers([BOOK], ("gb",))
    finally:
        await service.close()
    assert len(fake.asked("gb")) == 2


async def test_answers_survive_a_restart_with_the_sqlite_store(
    fake: FakeProviders, tmp_path: Path
) -> None:
    fake.gb[BOOK] = "v1"
    path = tmp_path / "covers.sqlite3"

    def store() -> SqliteStore:
        return SqliteStore(path, memory_entries=100, max_rows=1000)

    first = await started(fake, store())
    try:
        assert await first.covers([BOOK, OTHER], ("gb",)) == {BOOK: gb_url(fake, "v1")}
    finally:
        await first.close()
    fake.mode["gb"] = "fail"  # the providers are not needed any more
    second = await started(fake, store())
    try:
        assert await second.covers([BOOK_10, OTHER], ("gb",)) == {BOOK_10: gb_url(fake, "v1")}
    finally:
        await second.close()
    assert len(fake.asked("gb")) == 1


class BrokenStore(MemoryStore):
    async def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, str | None]:
        raise OSError("disk on fire")

    async def put_many(self, entries: Mapping[CacheKey, tuple[str | None, float]]) -> None:
        raise OSError("disk on fire")


async def test_a_broken_store_costs_the_cache_not_the_answer(fake: FakeProviders) -> None:
    fake.gb[BOOK] = "v1"
    service = await started(fake, BrokenStore(100))
    try:
        assert await service.covers([BOOK], ("gb",)) == {BOOK: gb_url(fake, "v1")}
    finally:
        await service.close()


async def test_request_checks(fake: FakeProviders) -> None:
    service = await started(fake, max_ids=3)
    try:
        assert service.parse_ids("a,,b,a") == ["a", "b"]
        assert service.parse_providers(None) == ("gb", "ol")
        assert service.parse_providers("ol, gb") == ("ol", "gb")
        for text in (None, "", ",,", "1,2,3,4"):
            with pytest.raises(BadRequest):
                service.parse_ids(text)
        for names in ("gb,xx", "aws"):  # aws is known, but not enabled
            with pytest.raises(BadRequest):
                service.parse_providers(names)
    finally:
        await service.close()


async def test_amazon_when_enabled(fake: FakeProviders) -> None:
    fake.aws.add("0415480639")
    service = await started(fake, providers=("gb", "aws"))
    try:
        answer = await service.covers([BOOK, OTHER, NOWHERE], ("aws",))
    finally:
        await service.close()
    assert answer == {BOOK: f"{fake.url}/aws/images/P/0415480639.01.MZZZZZZZZZ.jpg"}
    assert len(fake.asked("aws")) == 2


async def test_provider_lookups_are_counted_by_outcome(fake: FakeProviders) -> None:
    fake.gb.update({BOOK: "v1"})
    fake.ol.update({OTHER: 22})
    service = await started(fake)
    try:
        await service.covers([BOOK, OTHER, NOWHERE], ("gb", "ol"))
        fake.mode["gb"] = "fail"
        await service.covers([THIRD], ("gb", "ol"))
    finally:
        await service.close()
    assert service.lookups[("gb", "found")] == 1
    assert service.lookups[("gb", "none")] == 2
    assert service.lookups[("gb", "failed")] == 1
    assert service.lookups[("ol", "found")] == 1
