"""Configuration: defaults, the YAML file, the environment, and errors that name the key."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from iiif_server.config import MAX_AUTO_PROCESSES, ConfigError, Settings, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def test_runs_with_no_file() -> None:
    settings = load(None, {})
    assert settings == Settings()
    assert settings.http_port == 4040 and settings.default_type == "sample"
    assert settings.confined_size == "clamp"
    assert load(None, {"IIIF_SERVER_CONFINED_SIZE": "error"}).confined_size == "error"


def test_processes_default_to_one_per_core_and_take_auto_or_a_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(3)))
    assert load(None, {}).processes == 3
    assert load(None, {"IIIF_SERVER_PROCESSES": "auto"}).processes == 3
    assert load(None, {"IIIF_SERVER_PROCESSES": "1"}).processes == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert load(None, {}).processes == MAX_AUTO_PROCESSES  # a big machine: capped
    # A budget per front divides by the number resolved.
    web = {"IIIF_SERVER_TYPES": "{w: {source: web, url: 'https://example.org/{name}'}}"}
    small = {**web, "IIIF_SERVER_SOURCE_CACHE_MAX_BYTES": "1GB"}
    with pytest.raises(ConfigError, match="max_source_bytes"):
        load(None, small)
    assert load(None, {**small, "IIIF_SERVER_PROCESSES": "4"}).processes == 4


def test_the_event_loop_is_uvloop_where_installed_or_asyncio_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load(None, {}).event_loop == "uvloop"  # a dependency on Linux
    assert load(None, {"IIIF_SERVER_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    assert load(None, {"IIIF_SERVER_EVENT_LOOP": "auto"}).event_loop == "uvloop"
    with pytest.raises(ConfigError, match="event_loop: must be auto, uvloop or asyncio"):
        load(None, {"IIIF_SERVER_EVENT_LOOP": "trio"})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # not installed
    assert load(None, {}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        load(None, {"IIIF_SERVER_EVENT_LOOP": "uvloop"})


def test_seed_keys_work_unchanged(tmp_path: Path) -> None:
    settings = load(
        write(
            tmp_path,
            """
base_url: https://images.example.org/
http_port: 8080
cache_path: /var/cache/iiif
source_path: /srv/images
min_sizes_size: 100
size_pool_size: 2
image_pool_size: 4
info_cache_size: 1000
image_cache_size_per_process: 256
max_http_fetches: 10
types:
  collection:
    source: disk
  museum:
    source: web
    url: https://assets.example.org/{name}
  partner:
    source: trusted_web
    regex: https://partner\\.example\\.org/images/.*
default_type: collection
""",
        ),
        {},
    )
    assert settings.base_url == "https://images.example.org"
    assert settings.cache_path == Path("/var/cache/iiif")
    assert settings.image_cache_size_per_process == 256  # the seed's count of images
    assert settings.default_type == "collection"
    assert settings.types["museum"].url == "https://assets.example.org/{name}"
    assert settings.types["partner"].source == "trusted_web"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "http_port: 8080\nallow_upscaling: true\n")
    settings = load(
        path,
        {"IIIF_SERVER_HTTP_PORT": "9090", "IIIF_SERVER_ALLOW_UPSCALING": "false",
         "IIIF_SERVER_CACHE_MAX_BYTES": "2GiB", "OTHER": "ignored"},
    )  # fmt: skip
    assert settings.http_port == 9090
    assert settings.allow_upscaling is False
    assert settings.cache_max_bytes == 2 * 2**30


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("http_prot: 80\n", "http_prot"),
        ("http_port: eighty\n", "http_port"),
        ("http_port: 70000\n", "http_port"),
        ("image_pool_size: 0\n", "image_pool_size"),
        ("allow_upscaling: maybe\n", "allow_upscaling"),
        ("cache_max_bytes: lots\n", "cache_max_bytes"),
        ("base_url: ftp://example.org\n", "base_url"),
        ("types: {a: {source: ftp}}\n", "types.a.source"),
        ("types: {a: {source: web}}\n", "types.a.url"),
        ("types: {a: {source: trusted_web, regex: '('}}\n", "types.a.regex"),
        ("types: {a: {source: disk, colour: red}}\n", "types.a.colour"),
        ("types: {'a/b': {source: disk}}\n", "types.a/b"),
        ("default_type: nothing\n", "default_type"),
        ("confined_size: shrink\n", "confined_size"),
        ("page_delimiter: p\n", "page_delimiter"),
        ("page_delimiter: '/'\n", "page_delimiter"),
        ("page_delimiter: ''\n", "page_delimiter"),
        ("pdf_dpi: 5000\n", "pdf_dpi"),
        ("processes: many\n", "processes"),
        ("processes: 0\n", "processes"),
        ("- a list\n", "top level"),
        ("key: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_values_stop_with_the_key_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("/", "/")):
        load(write(tmp_path, text), {})


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="http_port"):
        load(None, {"IIIF_SERVER_HTTP_PORT": "port"})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.yml", {})


def test_example_config_documents_every_key() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.yml"
    settings = load(example, {})
    text = example.read_text()
    for key in Settings.__dataclass_fields__.keys() - {"warnings"}:
        assert f"{key}:" in text, f"config.example.yml does not document {key}"
    assert settings.types


def test_types_without_default_type_have_no_default(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "types: {books: {source: disk}}\n"), {})
    assert settings.default_type is None and not settings.warnings
    assert load(None, {}).default_type == "sample"  # the built-in types keep theirs


@pytest.mark.parametrize(
    ("text", "images", "budget"),
    [
        ("image_cache_size_per_process: 5\n", 5, 512 * 2**20),
        ("image_cache_size_per_process: '5'\n", 5, 512 * 2**20),
        ("image_cache_size_per_process: 2GiB\n", None, 2 * 2**30),
        ("image_cache_size_per_process: 3\nimage_cache_max_bytes: 1GB\n", 3, 10**9),
        ("image_cache_max_bytes: 100MB\n", None, 10**8),
    ],
)
def test_image_cache_is_a_count_of_images_or_bytes_with_a_unit(
    tmp_path: Path, text: str, images: int | None, budget: int
) -> None:
    settings = load(write(tmp_path, text), {})
    assert settings.image_cache_size_per_process == images
    assert settings.image_cache_max_bytes == budget


@pytest.mark.parametrize(
    "text",
    [
        "image_cache_size_per_process: 0\n",
        "image_cache_size_per_process: lots\n",
        "image_cache_size_per_process: 1GB\nimage_cache_max_bytes: 2GB\n",
    ],
)
def test_bad_image_cache_sizes_name_the_key(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="image_cache_size_per_process"):
        load(write(tmp_path, text), {})
