"""The `resources:` section: defaults, values, and start-up errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.config import ConfigError, from_mapping
from iiif_server.resources.config import ResourcesSettings


def test_defaults_serve_the_shipped_sample() -> None:
    settings = from_mapping({}).resources
    assert settings == ResourcesSettings()
    assert settings.root == Path("data/resources") and settings.mount == "/resources"
    assert (Path(__file__).resolve().parents[2] / "data/resources/books/sample.epub").is_file()


def test_values_are_read() -> None:
    raw = {"root": "/srv/books", "mount": "/", "max_dimension": 1000, "jpeg_quality": 70,
           "max_age": 60, "intermediate_sizes": [1000, 500], "max_entry_bytes": "2MiB"}  # fmt: skip
    settings = from_mapping({"resources": raw}).resources
    assert settings.root == Path("/srv/books") and settings.prefix == ""
    assert settings.intermediate_sizes == (500, 1000)
    assert settings.max_entry_bytes == 2 * 2**20
    assert from_mapping({"resources": {"root": None}}).resources.root is None
    assert from_mapping({"resources": {"mount": "/files/"}}).resources.prefix == "/files"
    off = from_mapping({"resources": {"intermediate_sizes": []}}).resources
    assert off.intermediate_sizes == ()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"colour": 1}, "resources.colour"),
        ({"mount": "resources"}, "resources.mount"),
        ({"mount": "/a b"}, "resources.mount"),
        ({"root": ""}, "resources.root"),
        ({"max_dimension": 0}, "resources.max_dimension"),
        ({"jpeg_quality": 101}, "resources.jpeg_quality"),
        ({"max_age": -1}, "resources.max_age"),
        ({"intermediate_sizes": 500}, "resources.intermediate_sizes"),
        ({"intermediate_sizes": [500, "big"]}, "resources.intermediate_sizes"),
        ({"max_entry_bytes": "lots"}, "resources.max_entry_bytes"),
        ({"max_entry_bytes": 0}, "resources.max_entry_bytes"),
    ],
)
def test_bad_values_stop_start_up_naming_the_key(raw: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        from_mapping({"resources": raw})
    assert str(raised.value).startswith(f"{key}:")


def test_the_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^resources: "):
        from_mapping({"resources": [1]})
