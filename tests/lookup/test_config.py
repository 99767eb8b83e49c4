"""The `lookup:` section: defaults, validation naming the key, the hook into the server's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iiif_server.config import ConfigError, from_mapping, load
from iiif_server.lookup.config import LookupSettings

LISTING = "https://editor.example/list-books-by-id/{scheme}.json"


def test_the_default_answers_from_the_shipped_sample_and_null_turns_it_off() -> None:
    default = from_mapping({}).lookup
    assert default.enabled
    assert default.local_file("archive.org") == Path("data/lookup/archive.org.json")
    assert from_mapping({"lookup": {"listing_url": None}}).lookup.enabled is False


def test_file_listing_urls_name_a_path_on_this_machine() -> None:
    relative = from_mapping({"lookup": {"listing_url": "file:lists/{scheme}.json"}}).lookup
    assert relative.local_file("ISBN") == Path("lists/ISBN.json")
    absolute = from_mapping({"lookup": {"listing_url": "file:///srv/{scheme}.json"}}).lookup
    assert absolute.local_file("ISBN") == Path("/srv/ISBN.json")
    assert from_mapping({"lookup": {"listing_url": LISTING}}).lookup.local_file("ISBN") is None


def test_on_with_a_listing_url() -> None:
    settings = from_mapping(
        {
            "lookup": {
                "listing_url": LISTING,
                "schemes": ["archive.org", "ISBN"],
                "mount": "/",
                "interval": 120,
                "timeout": 30,
                "max_listing_bytes": "800MB",
                "fallback": {"edit": "https://editor.example/import/{scheme}/{id}"},
            }
        }
    ).lookup
    assert settings.enabled
    assert settings.schemes == ("archive.org", "ISBN")
    assert settings.mount == "/"
    assert settings.max_listing_bytes == 800 * 10**6
    assert settings.url("ISBN") == "https://editor.example/list-books-by-id/ISBN.json"
    assert settings.fallback == {"edit": "https://editor.example/import/{scheme}/{id}"}
    assert from_mapping({"lookup": {"listing_url": None}}).lookup.enabled is False


@pytest.mark.parametrize(
    ("lookup", "key"),
    [
        ({"listing_url": "https://editor.example/l.json", "schemes": ["a"]}, "lookup.listing_url"),
        ({"listing_url": "javascript:{scheme}", "schemes": ["a"]}, "lookup.listing_url"),
        ({"listing_url": "https://{scheme}.example/", "schemes": ["a"]}, "lookup.listing_url"),
        ({"listing_url": LISTING, "schemes": []}, "lookup.schemes"),
        ({"listing_url": LISTING, "schemes": ["a/b"]}, "lookup.schemes"),
        ({"listing_url": LISTING, "schemes": ["a", "a"]}, "lookup.schemes"),
        ({"mount": "lookup"}, "lookup.mount"),
        ({"mount": "/a b"}, "lookup.mount"),
        ({"interval": 0}, "lookup.interval"),
        ({"timeout": "soon"}, "lookup.timeout"),
        ({"max_listing_bytes": "lots"}, "lookup.max_listing_bytes"),
        ({"fallback": ["x"]}, "lookup.fallback"),
        ({"fallback": {"edit": "/import/{id}"}}, "lookup.fallback.edit"),
        ({"colour": "red"}, "lookup.colour"),
    ],
)
def test_a_bad_value_names_its_key(lookup: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}:"):
        from_mapping({"lookup": lookup})


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^lookup: must be a mapping"):
        from_mapping({"lookup": "on"})


def test_the_example_documents_every_lookup_key() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yml"
    text = example.read_text()
    part = text[text.index("\nlookup:") :]
    for key in LookupSettings.__dataclass_fields__:
        assert f"\n  {key}:" in part, f"config.example.yml does not document lookup.{key}"
    assert load(example, {}).lookup == LookupSettings()
