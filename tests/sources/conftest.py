"""Fixtures for the web source tests: an upstream on loopback and a registry pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from iiif_server.config import Settings, TypeSettings
from iiif_server.sources.registry import SourceRegistry
from iiif_server.sources.s3_config import parse_s3
from tests.conftest import make_settings
from tests.sources.upstream import Upstream


@pytest.fixture
def upstream(io_loop: IOLoop) -> Iterator[Upstream]:
    server = Upstream()
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.close)


def web_settings(
    tmp_path: Path, source_path: Path, upstream: Upstream, **overrides: Any
) -> Settings:
    """`museum` (web, template on the upstream) and `partner` (trusted_web, upstream only)."""
    port = upstream.port
    types = {
        "sample": TypeSettings(name="sample"),
        "museum": TypeSettings(
            name="museum", source="web", url=upstream.url("/images/{name}"), ttl=None
        ),
        "partner": TypeSettings(
            name="partner", source="trusted_web", regex=rf"http://127\.0\.0\.1:{port}/images/.+"
        ),
    }
    values: dict[str, Any] = {
        "types": types,
        "allow_private_addresses": True,  # the upstream is on loopback
        "http_timeout": 5.0,
        "http_connect_timeout": 2.0,
    }
    values.update(overrides)
    return make_settings(tmp_path, source_path, **values)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def registry(
    tmp_path: Path, source_path: Path, upstream: Upstream, overrides: dict[str, Any]
) -> SourceRegistry:
    return SourceRegistry(web_settings(tmp_path, source_path, upstream, **overrides))


def s3_type(name: str, endpoint_url: str, prefix: str, **extra: Any) -> TypeSettings:
    """An s3 type on the test bucket, signed with the store's one identity."""
    from tests import s3store

    raw = {
        "bucket": s3store.BUCKET,
        "prefix": prefix,
        "endpoint_url": endpoint_url,
        "region": s3store.REGION,
        "access_key_id": s3store.ACCESS_KEY_ID,
        "secret_access_key": s3store.SECRET_ACCESS_KEY,
        **extra,
    }
    ttl = raw.pop("ttl", None)
    return TypeSettings(name=name, source="s3", ttl=ttl, s3=parse_s3(raw))


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own in the shared bucket."""
    return f"t-{uuid.uuid4().hex[:12]}/"
