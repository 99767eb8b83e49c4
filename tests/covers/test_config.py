"""The `covers:` settings: defaults, a full mapping, and errors naming `covers.<key>`."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiif_server.config import ConfigError, load
from iiif_server.covers.config import CoversSettings


def test_defaults_are_coces() -> None:
    covers = load(None, {}).covers
    assert covers == CoversSettings()
    assert covers.providers == ("gb", "ol") and covers.timeout == 8000 and covers.deadline == 8.0
    assert covers.store == "sqlite" and covers.set_token is None
    assert covers.gb.base_url == "https://books.google.com/books"
    assert covers.ol.image_size == "medium"
    assert covers.gb.negative_ttl < covers.gb.ttl


def test_a_full_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        """
covers:
  providers: [ol, gb, aws]
  timeout: 3000
  max_ids: 40
  store: redis://cache.internal:6380/2
  cooldown: 30
  cooldown_after: 5
  set_token: 0123456789abcdef0123
  ol: {base_url: "http://mirror.internal/api/books/", image_size: large, ttl: 604800}
  gb: {negative_ttl: 600}
"""
    )
    covers = load(path, {}).covers
    assert covers.providers == ("ol", "gb", "aws")
    assert covers.deadline == 3.0 and covers.max_ids == 40 and covers.cooldown == 30.0
    assert covers.store == "redis://cache.internal:6380/2"
    assert covers.ol.base_url == "http://mirror.internal/api/books"
    assert covers.ol.image_size == "large" and covers.ol.ttl == 604800.0
    assert covers.gb.negative_ttl == 600.0 and covers.gb.ttl == 86400.0


def test_the_environment_can_set_the_whole_mapping() -> None:
    covers = load(None, {"IIIF_SERVER_COVERS": "{providers: 'ol,gb', timeout: 500}"}).covers
    assert covers.providers == ("ol", "gb") and covers.timeout == 500


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("covers: [gb]", "covers: must be a mapping"),
        ("covers: {providers: [gb, bn]}", "covers.providers"),
        ("covers: {providers: [gb, gb]}", "covers.providers"),
        ("covers: {providers: []}", "covers.providers"),
        ("covers: {timeout: 0}", "covers.timeout"),
        ("covers: {timeout: fast}", "covers.timeout"),
        ("covers: {max_ids: 0}", "covers.max_ids"),
        ("covers: {store: memcached://x}", "covers.store"),
        ("covers: {store: redis://host/db}", "covers.store"),
        ("covers: {set_token: short}", "covers.set_token"),
        ("covers: {gb: {ttl: -1}}", "covers.gb.ttl"),
        ("covers: {gb: {base_url: 'ftp://x'}}", "covers.gb.base_url"),
        ("covers: {gb: {image_size: large}}", "covers.gb.image_size"),
        ("covers: {ol: {image_size: huge}}", "covers.ol.image_size"),
        ("covers: {colour: red}", "covers.colour"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load(path, {})


def test_the_example_documents_every_covers_key() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yml"
    text = example.read_text()
    covers_part = text[text.index("\ncovers:") :]
    for key in CoversSettings.__dataclass_fields__:
        assert f"\n  {key}:" in covers_part, f"config.example.yml does not document covers.{key}"
    for key in ("base_url", "ttl", "negative_ttl", "image_size"):
        assert f"\n    {key}:" in covers_part
    assert load(example, {}).covers == CoversSettings()
