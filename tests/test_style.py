"""The code base stays ruff- and mypy-clean (the project's style rules, checked by CI)."""

from __future__ import annotations

import subprocess
import sys

from tests.live import REPO


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_ruff_check() -> None:
    result = run("ruff", "check", "iiif_server", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run("ruff", "format", "--check", "iiif_server", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_tests() -> None:
    """The tests under the same [mypy] config (its strict = True holds for them too)."""
    result = run("mypy", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
