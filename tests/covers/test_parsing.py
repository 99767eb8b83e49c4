"""Any input gives a value or the one error meant for it: ids, providers, provider bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iiif_server.covers.config import CoversSettings
from iiif_server.covers.providers import ProviderError, parse_gb, parse_ol
from iiif_server.covers.service import CoverService
from iiif_server.covers.store import MemoryStore
from iiif_server.errors import BadRequest

SERVICE = CoverService(CoversSettings(max_ids=5), MemoryStore(10))


@given(st.text(max_size=200))
def test_ids_are_a_short_list_or_a_400(text: str) -> None:
    try:
        ids = SERVICE.parse_ids(text)
    except BadRequest:
        return
    assert 1 <= len(ids) <= 5 and all(part in text for part in ids)


@pytest.mark.parametrize("text", ["", " ", ",", " , ,"])
def test_no_provider_named_means_the_configured_ones(text: str) -> None:
    assert SERVICE.parse_providers(text) == SERVICE.settings.providers


@given(st.text(max_size=50))
def test_providers_are_enabled_ones_or_a_400(text: str) -> None:
    try:
        providers = SERVICE.parse_providers(text)
    except BadRequest:
        return
    assert providers and set(providers) <= {"gb", "ol"}


@given(
    st.binary(max_size=300) | st.text(max_size=300).map(lambda t: f"_GBSBookInfo = {t};".encode())
)
def test_any_google_body_is_covers_or_a_provider_error(body: bytes) -> None:
    try:
        found = parse_gb(body, ["1", "2"])
    except ProviderError:
        return
    assert set(found) == {"1", "2"}
    assert all(url is None or url.startswith(("http://", "https://")) for url in found.values())


@given(st.binary(max_size=300))
def test_any_open_library_body_is_covers_or_a_provider_error(body: bytes) -> None:
    try:
        found = parse_ol(body, ["1"], "medium")
    except ProviderError:
        return
    assert set(found) == {"1"}


def test_absurd_nesting_is_a_provider_error() -> None:
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(ProviderError):
        parse_gb(b"_GBSBookInfo = " + deep + b";", ["1"])
    with pytest.raises(ProviderError):
        parse_ol(deep, ["1"], "medium")
