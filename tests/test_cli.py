"""The command line: check-config, info, and serve with a clean stop on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from iiif_server.cli import main
from tests.conftest import TEST_IMAGE, TEST_IMAGE_ID
from tests.live import REPO, live_server


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(REPO / "config.example.yml")]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_check_config_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("image_pool_size: many\n")
    assert main(["check-config", "--config", str(config)]) == 2
    assert "image_pool_size" in capsys.readouterr().err


def test_info_prints_the_info_json_without_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "sources" / "sample").mkdir(parents=True)
    shutil.copy(TEST_IMAGE, tmp_path / "data" / "sources" / "sample")
    monkeypatch.chdir(tmp_path)
    assert main(["info", TEST_IMAGE_ID]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["id"] == f"http://127.0.0.1:4040/iiif/3/{TEST_IMAGE_ID}"
    assert (document["width"], document["height"]) == (1000, 1000)
    assert main(["info", "sample:absent"]) == 1
    assert "404" in capsys.readouterr().err


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "iiif_server", "--version"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip()


def test_defaults_serve_the_sample_image_from_a_clone(tmp_path: Path) -> None:
    """The README's run command: no config, the shipped sample folder, port 4040's layout."""
    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("cache"))
    with live_server(tmp_path) as server:
        status, headers, body = server.get(f"/iiif/3/{TEST_IMAGE_ID}/info.json")
        assert status == 200
        assert json.loads(body)["id"] == f"{server.url}/iiif/3/{TEST_IMAGE_ID}"
        status, headers, body = server.get(f"/iiif/3/{TEST_IMAGE_ID}/full/max/0/default.jpg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
    log = server.log.read_text()
    # One access line per request, with status and duration.
    assert f"200 GET /iiif/3/{TEST_IMAGE_ID}/info.json" in log and "ms" in log


def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    sample = tmp_path / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    Image.effect_noise((3000, 3000), 60).convert("RGB").save(sample / "big.jpg")
    with live_server(tmp_path) as server:
        assert server.get("/iiif/3/big/info.json")[0] == 200
        result: dict[str, int] = {}

        def slow_request() -> None:
            result["status"] = server.get("/iiif/3/big/full/^4000,/33/default.png", timeout=120)[0]

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)  # the request is in the worker by now (it takes seconds)
        server.process.send_signal(signal.SIGTERM)
        thread.join(timeout=120)
        assert server.process.wait(timeout=60) == 0
    assert result["status"] == 200
    assert "stopped" in server.log.read_text()
