"""A full disk at any point of an ingest: one line, nothing lost, and the next
run after space returns completes exactly once. Needs root (a small tmpfs is
mounted for the store); skips otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from tests.conftest import conn_header, conn_line, run_synack, write_log

LINES = 30_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def synack(*args: str) -> subprocess.CompletedProcess[str]:
    return run_synack(*args, timeout=300)


def fill(disk: Path, leave_kib: int) -> Path:
    """A file that leaves about `leave_kib` KiB free on `disk`."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - leave_kib * 1024, 0))
    return filler


@pytest.mark.slow
def test_a_full_disk_at_any_point_is_one_line_and_the_next_run_completes_once(small_disk: Path, tmp_path: Path) -> None:
    lines = (
        conn_line(f"C{i:07d}", ts=1795000000.0 + i, resp_p=1000 + i % 5000, orig=f"10.0.{i // 256 % 256}.{i % 256}")
        for i in range(LINES)
    )
    text = conn_header() + "".join(lines)
    log = write_log(tmp_path / "logs" / "conn.log", text)
    outcomes = set()
    for leave in (0, 8, 20, 50, 100, 200, 400, 800):
        store = small_disk / "store"
        shutil.rmtree(store, ignore_errors=True)
        filler = fill(small_disk, leave)
        first = synack("ingest", str(log), "--store", str(store))
        assert "Traceback" not in first.stderr and "internal error" not in first.stderr, (leave, first.stderr)
        assert "damaged" not in first.stderr, (leave, first.stderr)  # a full disk is not damage
        errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
        assert (first.returncode, len(errors)) in ((0, 0), (2, 1)), (leave, first.stderr)
        for line in errors:  # every error names the file (under the store) it could not write
            assert f"{store}/" in line or str(store / "ledger.sqlite") in line, (leave, line)
        outcomes.add(first.returncode)
        filler.unlink()
        second = synack("ingest", str(log), "--store", str(store))
        assert second.returncode == 0, (leave, second.stderr)
        uids = ds.dataset(store / "conn", partitioning="hive").to_table(columns=["uid"])["uid"].to_pylist()
        assert len(uids) == LINES and len(set(uids)) == LINES, (leave, len(uids), len(set(uids)))
        assert synack("check", "--store", str(store)).returncode == 0
    assert 2 in outcomes  # the sweep did hit a full disk
