"""Fixtures: a source folder with real images, settings pointing at it, a running server."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tornado.ioloop import IOLoop

from iiif_server.app import Server, ServerApplication
from iiif_server.config import Settings, TypeSettings
from iiif_server.lookup.config import LookupSettings

# The validator's test image (shared/fixtures/iiif-test-image), shipped as the sample.
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sources" / "sample"
TEST_IMAGE_ID = "67352ccc-d1b0-11e1-89ae-279075081939"
TEST_IMAGE = SAMPLE / f"{TEST_IMAGE_ID}.png"


@pytest.fixture
def io_loop() -> Iterator[IOLoop]:
    """pytest-tornado's loop fixture, without leaving a stray asyncio loop behind.

    Its own version makes the loop current through deprecated calls, after
    which asyncio creates (and never closes) a fresh loop for the next caller.
    """
    loop = IOLoop(make_current=False)
    asyncio.set_event_loop(loop.asyncio_loop)
    yield loop
    loop.close(all_fds=True)
    asyncio.set_event_loop(None)


@pytest.fixture
def source_path(tmp_path: Path) -> Path:
    """`sources/sample` with the validator image and a few generated ones; `sources/other` empty."""
    root = tmp_path / "sources"
    sample = root / "sample"
    (sample / "sub").mkdir(parents=True)
    (root / "other").mkdir()
    shutil.copy(TEST_IMAGE, sample / TEST_IMAGE.name)
    Image.new("RGB", (600, 400), (200, 30, 30)).save(sample / "red.jpg", quality=90)
    Image.new("RGB", (300, 200), (30, 30, 200)).save(sample / "sub" / "blue.png")
    (sample / "broken.jpg").write_bytes((sample / "red.jpg").read_bytes()[:700])
    (sample / "garbage.png").write_bytes(b"this is not an image at all")
    return root


def make_settings(tmp_path: Path, source_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        cache_path=tmp_path / "cache",
        source_path=source_path,
        processes=1,  # a test that wants several fronts says so
        types={"sample": TypeSettings(name="sample"), "other": TypeSettings(name="other",
               rights="http://creativecommons.org/publicdomain/zero/1.0/")},
        default_type="sample",
        size_pool_size=1,
        image_pool_size=1,
        image_task_timeout=20,
        lookup=LookupSettings(listing_url=None),  # tests of the lookup turn it on themselves
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def settings(tmp_path: Path, source_path: Path) -> Settings:
    return make_settings(tmp_path, source_path)


@pytest.fixture
def server(io_loop: IOLoop, settings: Settings) -> Iterator[Server]:
    running = Server(settings)
    io_loop.run_sync(running.start, timeout=60)
    yield running
    io_loop.run_sync(running.stop, timeout=60)


@pytest.fixture
def app(server: Server) -> ServerApplication:
    return server.make_app()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One SeaweedFS S3 store for the whole session (tests/s3store.py); its `S3Store`."""
    from tests.s3store import s3_store  # boto3 is imported only by sessions that need it

    with s3_store(tmp_path_factory.mktemp("s3")) as store:
        yield store
