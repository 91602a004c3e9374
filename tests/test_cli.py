"""The command line: thin, helpful, one-line errors and non-zero exits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import conn_line

runner = CliRunner()


def commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert len(result.output.strip().splitlines()) > 3


def test_ingest_prints_a_one_line_summary(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    log = make_conn_log("conn.log", [conn_line("A"), conn_line("B")])
    result = runner.invoke(app, ["ingest", str(log), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "ingested 1 files" in result.stdout and "2 rows" in result.stdout and "rows/s" in result.stdout


def test_store_from_environment(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    log = make_conn_log("conn.log", [conn_line("A")])
    result = runner.invoke(app, ["ingest", str(log)], env={"SYNACK_STORE": str(tmp_path / "env-store")})
    assert result.exit_code == 0
    assert (tmp_path / "env-store" / "ledger.sqlite").exists()


def test_store_from_synack_toml(
    tmp_path: Path, make_conn_log: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_conn_log("conn.log", [conn_line("A")])
    (tmp_path / "synack.toml").write_text(f'store = "{tmp_path / "toml-store"}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNACK_STORE", raising=False)
    result = runner.invoke(app, ["ingest", str(log)])
    assert result.exit_code == 0
    assert (tmp_path / "toml-store" / "ledger.sqlite").exists()


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: p / "missing.log", "no such file or directory"),
        (lambda p: (p / "junk.log").write_text("junk\n") and p / "junk.log", "not a Zeek log"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, make_input: Callable[[Path], Path], message: str) -> None:
    path = make_input(tmp_path)
    result = runner.invoke(app, ["ingest", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.output


def test_locked_store_is_one_line(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    from ingest.store import Store

    log = make_conn_log("conn.log", [conn_line("A")])
    with Store.open(tmp_path / "s"):
        result = runner.invoke(app, ["ingest", str(log), "--store", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: store") and "in use" in result.stderr


@pytest.mark.skipif(shutil.which("synack") is None, reason="console script not installed")
def test_demo_runs_from_any_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SYNACK_STORE"}
    result = subprocess.run(["synack", "demo"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "New server ports on 2026-11-21" in result.stdout
    assert "10.1.0.11" in result.stdout and "8443/tcp" in result.stdout
    assert list(tmp_path.iterdir()) == []  # the demo's store was temporary


def test_module_runs_without_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from cli import app; app()", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )
    assert result.returncode == 0 and "ingest" in result.stdout
