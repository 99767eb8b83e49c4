"""The official IIIF validator (iiif-validator 1.0.5) against a running server: zero failures."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE_ID
from tests.live import LiveServer, live_server

# Defects of the validator itself (see IIIF-NOTES.md); these formats have our own tests.
BROKEN_IN_VALIDATOR = {"format_webp", "format_jp2", "format_pdf"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("validator")
    sample = workdir / "data" / "sources" / "sample"
    sample.mkdir(parents=True)
    shutil.copytree(Path(__file__).resolve().parent.parent / "data" / "sources" / "sample",
                    sample, dirs_exist_ok=True)  # fmt: skip
    with live_server(workdir) as running:
        yield running


SHIM = Path(__file__).resolve().parent / "validator_shim"


def libmagic_missing() -> bool:
    return ctypes.util.find_library("magic") is None


def validator_tests(version: str) -> list[str]:
    if libmagic_missing():
        sys.path.insert(0, str(SHIM))
    from iiif_validator.validator import TestSuite, ValidationInfo

    tests = TestSuite(ValidationInfo()).list_tests(version)
    return sorted(name for name in tests if name not in BROKEN_IN_VALIDATOR)


@pytest.mark.parametrize("version", ["3.0", "2.0"])
def test_validator_passes_level_2_and_optional_features(server: LiveServer, version: str) -> None:
    script = shutil.which("iiif-validate.py") or str(
        Path(sys.executable).parent / "iiif-validate.py"
    )
    names = validator_tests(version)
    assert {"linkheader_canonical", "rot_mirror", "size_up", "format_gif", "format_tif"} <= set(
        names
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
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert f"({len(names)} tests, 0 failures)" in report, report
