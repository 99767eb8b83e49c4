"""An s3 type's settings: read from its mapping; bad ones stop start-up naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from iiif_server.config import ConfigError, from_mapping
from iiif_server.sources.s3_client import credentials_for
from iiif_server.sources.s3_config import S3Settings
from iiif_server.sources.sigv4 import Credentials


def museum(**keys: Any) -> dict[str, Any]:
    return {"types": {"museum": {"source": "s3", "bucket": "images", **keys}}, "default_type": None}


def test_s3_type_is_read() -> None:
    settings = from_mapping(
        museum(
            prefix="collection/",
            endpoint_url="http://127.0.0.1:8333",
            region="eu-central-1",
            access_key_id="id",
            secret_access_key="secret",
            connect_timeout=1,
            ttl=60,
        )
    )
    museum_type = settings.types["museum"]
    assert museum_type.source == "s3" and museum_type.ttl == 60
    assert museum_type.s3 == S3Settings(
        bucket="images",
        prefix="collection/",
        endpoint_url="http://127.0.0.1:8333",
        region="eu-central-1",
        access_key_id="id",
        secret_access_key="secret",
        connect_timeout=1.0,
    )
    assert "secret" not in repr(museum_type)


def test_defaults_are_aws_itself() -> None:
    s3 = from_mapping(museum()).types["museum"].s3
    assert s3 is not None
    assert (s3.prefix, s3.region) == ("", "us-east-1")
    assert s3.base_url == "https://s3.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"bucket": None}, "types.museum.bucket"),
        ({"bucket": "No_Such"}, "types.museum.bucket"),
        ({"prefix": "collection"}, "types.museum.prefix"),
        ({"prefix": "../up/"}, "types.museum.prefix"),
        ({"endpoint_url": "ftp://store"}, "types.museum.endpoint_url"),
        ({"region": "EU West"}, "types.museum.region"),
        ({"access_key_id": "id"}, "types.museum.access_key_id"),
        ({"timeout": 0}, "types.museum.timeout"),
        ({"buckett": "images"}, "types.museum.buckett"),
    ],
)
def test_bad_s3_settings_name_their_key(keys: dict[str, Any], named: str) -> None:
    raw = museum(**keys)
    if keys.get("bucket", "") is None:
        del raw["types"]["museum"]["bucket"]
    with pytest.raises(ConfigError, match=rf"^{named}:"):
        from_mapping(raw)


def test_s3_keys_belong_to_s3_types_only() -> None:
    with pytest.raises(ConfigError, match=r"^types.sample.bucket: unknown key"):
        from_mapping({"types": {"sample": {"source": "disk", "bucket": "images"}}})


def test_credentials_come_from_the_type_then_the_environment() -> None:
    environ = {"AWS_ACCESS_KEY_ID": "env-id", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    own = S3Settings(bucket="images", access_key_id="id", secret_access_key="secret")
    assert credentials_for(own, environ) == Credentials("id", "secret")
    plain = S3Settings(bucket="images")
    token = {**environ, "AWS_SESSION_TOKEN": "token"}
    assert credentials_for(plain, token) == Credentials("env-id", "env-secret", "token")
    assert credentials_for(plain, {}) is None
