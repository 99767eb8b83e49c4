"""The seed server's README configuration examples start unchanged and mean what they meant.

The examples are those of the seed's README (NaturalHistoryMuseum/iiif-image-
server): its table of keys with their example values, and one `types` block per
source kind, the trusted_web one written as `source: web` with a `regex`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from iiif_server.cli import main
from iiif_server.config import load
from tests.live import live_server

SEED_TABLE = """\
base_url: http://10.11.20.12/iiif_images
http_port: 4040
cache_path: /var/lib/iiif_image_server/cache
source_path: /var/lib/iiif_image_server/source
min_sizes_size: 200
size_pool_size: 2
image_pool_size: 4
info_cache_size: 1024
image_cache_size_per_process: 5
max_http_fetches: 10
types: {}
"""
SEED_DISK = """\
types:
  project1:
    source: disk
"""
SEED_WEB = """\
types:
  project2:
    source: web
    url: http://example.com/storage/images/{name}.jpg
"""
SEED_TRUSTED_WEB = """\
types:
  project3:
    source: web
    regex: https://raw.githubusercontent.com/NaturalHistoryMuseum/.+
"""
EXAMPLES = {"table": SEED_TABLE, "disk": SEED_DISK, "web": SEED_WEB,
            "trusted_web": SEED_TRUSTED_WEB}  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "seed.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", EXAMPLES)
def test_check_config_accepts_every_seed_example(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(write(tmp_path, EXAMPLES[name]))]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_the_seed_table_means_what_it_meant(tmp_path: Path) -> None:
    settings = load(write(tmp_path, SEED_TABLE), {})
    assert settings.image_cache_size_per_process == 5  # five images, not 5 MB
    assert settings.image_cache_max_bytes == 512 * 2**20  # still bounded in bytes
    assert settings.types == {} and settings.default_type is None
    assert (settings.size_pool_size, settings.image_pool_size) == (2, 4)


def test_the_seed_trusted_web_form_is_trusted_web_with_a_warning(tmp_path: Path) -> None:
    settings = load(write(tmp_path, SEED_TRUSTED_WEB), {})
    project3 = settings.types["project3"]
    assert project3.source == "trusted_web" and project3.url is None
    assert project3.regex == "https://raw.githubusercontent.com/NaturalHistoryMuseum/.+"
    assert len(settings.warnings) == 1 and "project3" in settings.warnings[0]


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_seed_example_serves_unchanged(tmp_path: Path, name: str) -> None:
    """The file as written; only where it listens and keeps files comes from the environment."""
    config = write(tmp_path, EXAMPLES[name])
    sources = tmp_path / "sources"
    (sources / "project1").mkdir(parents=True)
    # The seed's own example: `project1:banana` is the file {source_path}/project1/banana.
    Image.new("RGB", (300, 200), (200, 30, 30)).save(sources / "project1" / "banana", "JPEG")
    env = {"IIIF_SERVER_SOURCE_PATH": str(sources), "IIIF_SERVER_CACHE_PATH": str(tmp_path / "c")}
    with live_server(tmp_path, env, ("--config", str(config))) as server:
        # No default type: an identifier without a colon is simply unknown.
        assert server.get("/iiif/3/banana/info.json")[0] == 404
        status, _, body = server.get("/iiif/3/project1:banana/info.json")
        if name == "disk":
            assert status == 200 and json.loads(body)["width"] == 300
        else:
            assert status == 404
    warnings = [
        line for line in server.log.read_text().splitlines() if "WARNING iiif_server.config" in line
    ]
    if name == "trusted_web":
        assert len(warnings) == 1 and "project3" in warnings[0] and "trusted_web" in warnings[0]
    elif name == "table":
        assert len(warnings) == 1 and "no types" in warnings[0]
    else:
        assert warnings == []
