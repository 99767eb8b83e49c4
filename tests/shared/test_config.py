"""`shared_cache` and `shared_info` in the configuration."""

from __future__ import annotations

import pytest

from iiif_server.config import ConfigError, from_mapping
from iiif_server.shared.config import SHARED_TIMEOUT


def test_the_bucket_and_prefix_come_from_the_url() -> None:
    settings = from_mapping(
        {
            "shared_cache": {"url": "s3://derivatives/iiif", "endpoint_url": "http://s3:8333"},
            "shared_info": "redis://redis:6379/0",
        }
    )
    assert settings.shared_cache is not None
    assert (settings.shared_cache.bucket, settings.shared_cache.prefix) == ("derivatives", "iiif/")
    assert settings.shared_cache.timeout == SHARED_TIMEOUT  # short: a miss renders
    assert settings.shared_info == "redis://redis:6379/0"


def test_null_shares_nothing() -> None:
    settings = from_mapping({"shared_cache": None, "shared_info": None})
    assert (settings.shared_cache, settings.shared_info) == (None, None)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"shared_cache": "s3://bucket"}, "shared_cache: must be a mapping"),
        ({"shared_cache": {"url": "http://bucket/x"}}, "shared_cache.url"),
        ({"shared_cache": {"url": "s3://b/x", "bucket": "b"}}, "shared_cache.url"),
        ({"shared_cache": {"url": "s3://bucket/", "colour": 1}}, "shared_cache.colour"),
        ({"shared_cache": {"url": "s3://bucket/", "timeout": 0}}, "shared_cache.timeout"),
        ({"shared_info": "http://redis"}, "shared_info: must be a redis://"),
    ],
)
def test_bad_shared_settings_name_the_key(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        from_mapping(raw)
