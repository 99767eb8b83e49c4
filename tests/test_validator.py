"""The official IIIF validator (iiif-validator 1.0.5) against running servers.

Zero failures, both ways of reading 3.0 `!w,h`: with `confined_size: error`
every test passes; with the default `clamp` every test passes except the one
sub-check of `size_noup` that reads it the other way, which is named below.
"""

from __future__ import annotations

import ctypes.util
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import TEST_IMAGE, TEST_IMAGE_ID
from tests.live import LiveServer, live_server

# Defects of the validator itself (see IIIF-NOTES.md); these formats have our own tests.
BROKEN_IN_VALIDATOR = {"format_webp", "format_jp2", "format_pdf"}


# The one check of the validator that reads 3.0 `!w,h` the other way: it asks
# for `!2000,3000` (larger than the image) and wants a 400, where the default
# `confined_size: clamp` answers the image at its own size (see the README).
STRICTER_READING = "size_noup"


def _sample_server(workdir: Path, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    sample = workdir / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    shutil.copytree(Path(__file__).resolve().parent.parent / "data" / "sources" / "sample",
                    sample, dirs_exist_ok=True)  # fmt: skip
    with live_server(workdir, env) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from _sample_server(tmp_path_factory.mktemp("validator"))


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"IIIF_SERVER_CONFINED_SIZE": "error"}
    yield from _sample_server(tmp_path_factory.mktemp("validator-strict"), env)


SHIM = Path(__file__).resolve().parent / "validator_shim"


def libmagic_missing() -> bool:
    return ctypes.util.find_library("magic") is None


def validator_tests(version: str) -> list[str]:
    if libmagic_missing():
        sys.path.insert(0, str(SHIM))
    from iiif_validator.validator import TestSuite, ValidationInfo

    tests = TestSuite(ValidationInfo()).list_tests(version)
    return sorted(name for name in tests if name not in BROKEN_IN_VALIDATOR)


def run_validator(server: LiveServer, version: str, names: list[str]) -> tuple[int, str]:
    """Exit status (the number of failures) and report of the validator on `names`."""
    script = shutil.which("iiif-validate.py") or str(
        Path(sys.executable).parent / "iiif-validate.py"
    )
    prefix = f"iiif/{version[0]}"
    command = [sys.executable, script, "-s", f"127.0.0.1:{server.port}", "-p", prefix,
               "-i", TEST_IMAGE_ID, f"--version={version}"]  # fmt: skip
    for name in names:
        command += ["--test", name]
    env = dict(os.environ)
    if libmagic_missing():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), env.get("PYTHONPATH")]))
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    return result.returncode, result.stdout + result.stderr


def test_validator_passes_level_2_and_optional_features_in_2_0(server: LiveServer) -> None:
    names = validator_tests("2.0")
    assert {"linkheader_canonical", "rot_mirror", "size_up", "format_gif", "format_tif"} <= set(
        names
    )
    status, report = run_validator(server, "2.0", names)
    assert status == 0, report
    assert f"({len(names)} tests, 0 failures)" in report, report


def test_validator_passes_3_0_with_confined_size_error(strict_server: LiveServer) -> None:
    names = validator_tests("3.0")
    assert {STRICTER_READING, "linkheader_canonical", "rot_mirror", "size_up"} <= set(names)
    status, report = run_validator(strict_server, "3.0", names)
    assert status == 0, report
    assert f"({len(names)} tests, 0 failures)" in report, report


def test_validator_passes_3_0_by_default_except_the_confined_box(server: LiveServer) -> None:
    names = validator_tests("3.0")
    others = [name for name in names if name != STRICTER_READING]
    status, report = run_validator(server, "3.0", others)
    assert status == 0, report
    assert f"({len(others)} tests, 0 failures)" in report, report
    status, report = run_validator(server, "3.0", [STRICTER_READING])
    assert status == 1, report
    # The failing sub-check is exactly `!2000,3000`: every other size of
    # size_noup above the image is still a 400 without `^`.
    base = f"/iiif/3/{TEST_IMAGE_ID}/full"
    for size in ("1100,1100", ",1100", "1100,", "pct:200"):
        assert server.get(f"{base}/{size}/0/default.jpg")[0] == 400, size
    status, _, body = server.get(f"{base}/!2000,3000/0/default.png")
    assert status == 200
    with Image.open(io.BytesIO(body)) as output, Image.open(TEST_IMAGE) as source:
        assert output.size == source.size
