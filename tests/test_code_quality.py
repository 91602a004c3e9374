"""ruff and mypy run with the tests, so one command checks everything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_is_clean() -> None:
    result = subprocess.run(["ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_mypy_is_clean(tmp_path: Path) -> None:
    """mypy checks the sources under the names they are installed as
    (synack.ingest, ...): through a link named synack to the repository."""
    pytest.importorskip("mypy")
    (tmp_path / "synack").symlink_to(ROOT, target_is_directory=True)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "-p", "synack.ingest", "-p", "synack.inventory", "-m", "synack.cli", "-m", "synack"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "no issues found in" in result.stdout and int(result.stdout.split(" in ")[1].split()[0]) > 40
