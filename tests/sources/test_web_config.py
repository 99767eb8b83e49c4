"""The settings of web sources: parsed with units, bad values stop start-up naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.config import ConfigError, load

WEB_TYPE = "types: {museum: {source: web, url: 'https://a.example/{name}'}}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def test_web_settings_are_read(tmp_path: Path) -> None:
    settings = load(
        write(
            tmp_path,
            WEB_TYPE
            + """
default_type: null
allow_private_addresses: true
http_connect_timeout: 2
http_timeout: 30.5
max_redirects: 0
max_source_bytes: 50MB
source_cache_max_bytes: 1GiB
negative_cache_ttl: 0
max_http_waiting: 10
""",
        ),
        {"IIIF_SERVER_MAX_HTTP_FETCHES": "3"},
    )
    assert settings.allow_private_addresses is True
    assert (settings.http_connect_timeout, settings.http_timeout) == (2.0, 30.5)
    assert settings.max_redirects == 0 and settings.negative_cache_ttl == 0
    assert settings.max_source_bytes == 50 * 10**6
    assert settings.source_cache_max_bytes == 2**30
    assert (settings.max_http_fetches, settings.max_http_waiting) == (3, 10)


def test_private_addresses_are_refused_by_default() -> None:
    assert load(None, {}).allow_private_addresses is False


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("allow_private_addresses: sometimes\n", "allow_private_addresses"),
        ("http_timeout: 0\n", "http_timeout"),
        ("http_connect_timeout: fast\n", "http_connect_timeout"),
        ("max_redirects: -1\n", "max_redirects"),
        ("negative_cache_ttl: -5\n", "negative_cache_ttl"),
        ("max_source_bytes: 0\n", "max_source_bytes"),
        ("source_cache_max_bytes: lots\n", "source_cache_max_bytes"),
        ("max_http_waiting: -1\n", "max_http_waiting"),
        ("types: {m: {source: web, url: 'https://{name}.example/x'}}\n", "types.m.url"),
        (WEB_TYPE + "max_source_bytes: 2GB\nsource_cache_max_bytes: 1GB\n", "max_source_bytes"),
        (WEB_TYPE + "source_cache_max_bytes: 300MB\nprocesses: 2\n", "max_source_bytes"),
    ],
)
def test_bad_web_settings_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load(write(tmp_path, text + "default_type: null\n"), {})


def test_the_store_budget_only_matters_with_web_types(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "source_cache_max_bytes: 1MB\n"), {})
    assert settings.source_cache_max_bytes == 10**6
