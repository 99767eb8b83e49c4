"""`iiif-server covers test` and `covers save`, run as a user would, against the fake providers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from iiif_server.cli import main
from tests.covers.fake_provider import FakeProviders, config_yaml, fake_in_thread

BOOK = "9780415480635"
THIRD = "9780306406157"


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with fake_in_thread() as providers:
        providers.gb[BOOK] = "v1"
        providers.ol.update({BOOK: 11, THIRD: 33})
        yield providers


@pytest.fixture
def config(tmp_path: Path, fake: FakeProviders) -> str:
    path = tmp_path / "config.yml"
    path.write_text(config_yaml(fake))
    return str(path)


def test_test_prints_the_json_of_cover(
    config: str, fake: FakeProviders, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["covers", "test", "0-415-48063-9", THIRD, "9791090636071", "--config", config]) == 0
    )
    assert json.loads(capsys.readouterr().out) == {
        "0-415-48063-9": fake.gb_cover("v1"),
        THIRD: f"{fake.url}/ol/b/id/33-M.jpg",
    }
    assert main(["covers", "test", BOOK, "--all", "--provider", "ol", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out) == {BOOK: {"ol": f"{fake.url}/ol/b/id/11-M.jpg"}}


def test_test_reports_a_bad_provider(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["covers", "test", BOOK, "--provider", "bn", "--config", config]) == 1
    assert "unknown provider 'bn'" in capsys.readouterr().err


def test_save_downloads_and_never_overwrites(
    config: str, fake: FakeProviders, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cover.jpg"
    assert main(["covers", "save", BOOK, str(target), "--config", config]) == 0
    assert target.read_bytes() == fake.image
    assert "gb" in capsys.readouterr().out
    asked = len(fake.requests)

    target.write_bytes(b"mine")
    assert main(["covers", "save", BOOK, str(target), "--config", config]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert target.read_bytes() == b"mine"
    assert len(fake.requests) == asked  # refused before asking anyone


def test_save_without_a_cover_writes_nothing(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cover.jpg"
    assert main(["covers", "save", "9791090636071", str(target), "--config", config]) == 1
    assert "no cover found" in capsys.readouterr().err
    assert not target.exists()
