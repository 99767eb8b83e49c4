"""The product in one process: restart from the on-disk copy, one syncing process, atomic swaps."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient

from iiif_server.handlers.base import NotFoundHandler
from iiif_server.lookup.product import LookupProduct
from iiif_server.lookup.state import read_status
from tests.lookup.conftest import SCHEME, lookup_settings, sync_once
from tests.lookup.fake_editor import FakeEditor

pytestmark = pytest.mark.gen_test(timeout=30)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def loaded(product: LookupProduct) -> bool:
    return SCHEME in product.listings.indexes


async def test_a_restart_answers_at_once_from_disk_with_the_editor_down(
    editor: FakeEditor, tmp_path: Path
) -> None:
    settings = lookup_settings(editor, interval=3600)
    first = LookupProduct(settings, tmp_path)
    await first.start()
    await until(lambda: loaded(first))
    await first.stop()
    editor.close()
    down = dataclasses.replace(
        settings, listing_url="http://127.0.0.1:1/{scheme}.json", interval=0.1
    )
    second = LookupProduct(down, tmp_path)
    await second.start()
    try:
        # No await between start and the query: the answer comes from disk, not from a sync.
        assert second.listings.resolve(SCHEME, "edit", "bijdragenototde00valegoog") == (
            "http://editor.example/kauri/edit/"
        )
        await until(lambda: second.health()["schemes"][SCHEME]["last_error"] is not None)
        assert second.listings.resolve(SCHEME, "edit", "bijdragenototde00valegoog") is not None
        status = second.health()["schemes"][SCHEME]
        assert status["last_error"].startswith("download failed")
        assert status["ids"] == 2 and status["last_success"] is not None
    finally:
        await second.stop()


async def test_one_process_syncs_and_another_takes_over(editor: FakeEditor, tmp_path: Path) -> None:
    settings = lookup_settings(editor, interval=3600)
    products = [LookupProduct(settings, tmp_path) for _ in range(3)]
    for product in products:
        await product.start()
    try:
        await until(lambda: all(loaded(product) for product in products))
        assert editor.count(SCHEME) == 1
        leaders = [product for product in products if product.leader.leading]
        assert len(leaders) == 1
        await leaders[0].stop()
        rest = [product for product in products if product is not leaders[0]]
        await until(lambda: any(product.leader.leading for product in rest))
        assert sum(product.leader.leading for product in rest) == 1
        assert editor.count(SCHEME) == 1  # the new leader keeps the schedule: no sync yet
    finally:
        for product in products:
            await product.stop()


def version(name: str, count: int) -> dict[str, dict[str, str]]:
    return {f"book{n}": {"edit": f"https://{name}.example/book{n}"} for n in range(count)}


@pytest.fixture
def product(editor: FakeEditor, tmp_path: Path) -> LookupProduct:
    # Never started: the test drives the syncs and the refreshes itself.
    return LookupProduct(lookup_settings(editor, interval=3600), tmp_path)


@pytest.fixture
def app(product: LookupProduct) -> tornado.web.Application:
    return tornado.web.Application(product.routes(), default_handler_class=NotFoundHandler)


async def test_queries_during_swaps_see_one_whole_listing(
    http_client: AsyncHTTPClient, base_url: str, editor: FakeEditor, product: LookupProduct
) -> None:
    product.folder.mkdir(parents=True)
    editor.listings[SCHEME] = version("a", 50)
    await sync_once(product.settings, product.folder)
    product.listings.refresh()
    answers: list[tuple[int, str, str]] = []
    stop = asyncio.Event()

    async def query(number: int) -> None:
        while not stop.is_set():
            response = await http_client.fetch(
                f"{base_url}/lookup/{SCHEME}/edit/book{number}",
                follow_redirects=False,
                raise_error=False,
            )
            answers.append((response.code, f"book{number}", response.headers.get("Location", "")))

    clients = [asyncio.ensure_future(query(number)) for number in range(0, 50, 5)]
    for name in ("b", "a", "b", "a"):
        editor.listings[SCHEME] = version(name, 50)
        await sync_once(product.settings, product.folder)
        product.listings.refresh()
        response = await http_client.fetch(
            f"{base_url}/lookup/{SCHEME}/edit/book7", follow_redirects=False, raise_error=False
        )
        assert response.headers["Location"] == f"https://{name}.example/book7"
    stop.set()
    await asyncio.gather(*clients)
    assert len(answers) > 20
    for code, identifier, location in answers:
        assert code == 302
        assert location in (f"https://a.example/{identifier}", f"https://b.example/{identifier}")
    assert read_status(product.folder)[SCHEME].ids == 50
    product.listings.close()
