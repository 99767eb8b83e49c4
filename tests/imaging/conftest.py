from __future__ import annotations

import pytest

from iiif_server.imaging import render

from .images import MAX_PIXELS


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a freshly started image worker (empty decoded cache)."""
    monkeypatch.setattr(render, "_worker", None)
    render.configure_worker(decoded_cache_bytes=256 << 20, max_pixels=MAX_PIXELS)
