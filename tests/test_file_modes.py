"""Files at rest are private: with a permissive umask (000) nothing synack
creates is world-readable; the quarantine, spooled input and crash reports
are the owner's only; a replaced export keeps the old file's mode.

Before: nothing set a mode, so under umask 022 the store, the quarantine
(raw lines from the network) and crash files were 0644.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import Inventory
from synack.inventory.daily_report import build_report
from synack.inventory.report_files import write_report
from tests.conftest import conn_header, conn_line

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_nothing_synack_creates_is_world_readable_under_umask_000(tmp_path: Path, open_umask: None) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    bad = conn_header() + conn_line("C1") + "not\ta\tconn\tline\n" + conn_line("C2")
    (logs / "conn.log").write_text(bad + "#close\t2026-11-21-11-00-00\n")
    store = tmp_path / "var" / "store"
    ingest_paths([SAMPLES, logs], store)
    report = write_report(build_report(store, "2026-11-21", nets="all"), tmp_path / "reports")
    made = [p for p in (tmp_path / "var").rglob("*")] + [tmp_path / "reports", *report]
    assert len(made) > 50
    for path in made:
        mode = _mode(path)
        assert mode & 0o007 == 0, (path, oct(mode))  # nothing for other users
        assert mode == (0o750 if path.is_dir() else 0o640) or path.parent.name == "quarantine", (path, oct(mode))
    quarantined = list((store / "quarantine").iterdir())
    assert quarantined and all(_mode(p) == 0o600 for p in quarantined)


def test_a_replaced_export_keeps_its_mode_and_crash_files_are_private(tmp_path: Path, open_umask: None) -> None:
    store = tmp_path / "store"
    ingest_paths([SAMPLES], store)
    known = tmp_path / "known.tsv"
    Inventory(store).export_known(known)
    assert _mode(known) == 0o640
    known.chmod(0o644)  # the operator wants Zeek's user to read it
    Inventory(store).export_known(known)
    assert _mode(known) == 0o644
    code = (
        "import sys; from synack import cli; cli.app = lambda: 1 / 0; sys.argv[1:] = ['--store', sys.argv[1]]; "
        "cli.main()"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True,
                          env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})  # fmt: skip
    assert proc.returncode == 2 and "internal error" in proc.stderr
    (crash,) = (store / "crash").iterdir()
    assert _mode(crash) == 0o600


def test_the_systemd_units_keep_other_users_out() -> None:
    for unit in (ROOT / "deploy").glob("*.service"):
        umask = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("UMask=")]
        assert umask and int(umask[0], 8) & 0o007 == 0o007, unit
