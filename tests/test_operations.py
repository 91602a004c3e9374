"""Operations never make things worse: a baseline is never silently
emptied, killed exports leave nothing behind, an unknown sensor is named
with its close matches, not with every sensor of the store.

Before: `export-known --sensor mian` (a typo of `main`) exited 0 having
replaced a 1,156-row baseline with an empty one, and the note listed every
sensor of the store on one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.partials import COARSE_CLIENTS
from synack.ingest.snapshot import take_snapshot
from synack.ingest.store_files import locate
from synack.inventory import Inventory
from synack.inventory.known_export import known_count
from synack.inventory.store_reader import InventoryError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("ops") / "store"
    ingest_paths([SAMPLES], store)
    return store


def _baseline(store: Path, tmp_path: Path) -> tuple[Path, bytes]:
    known = tmp_path / "known.tsv"
    result = runner.invoke(app, ["export-known", "--store", str(store), "--nets", "all", "-o", str(known)])
    assert result.exit_code == 0, result.output
    assert known_count(known) > 5
    return known, known.read_bytes()


@pytest.mark.parametrize("selection", [["--sensor", "edge-l"], ["--nets", "192.0.2.0/24"], ["--sensor", "nowhere"]])
def test_an_export_that_matches_nothing_leaves_the_baseline_untouched(store: Path, tmp_path: Path,
                                                                      selection: list[str]) -> None:  # fmt: skip
    known, before = _baseline(store, tmp_path)
    result = runner.invoke(app, ["export-known", "--store", str(store), "-o", str(known), *selection])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    if selection[1] == "edge-l":
        assert "did you mean 'edge-1'?" in lines[0]
    assert known.read_bytes() == before
    forced = runner.invoke(app, ["export-known", "--store", str(store), "-o", str(known), *selection, "--force"])
    assert forced.exit_code == (0 if selection[0] == "--nets" else 2)  # an unknown sensor stays an error


def test_an_export_that_drops_most_of_the_baseline_needs_force(store: Path, tmp_path: Path) -> None:
    known, before = _baseline(store, tmp_path)
    shrunk = ["export-known", "--store", str(store), "-o", str(known), "--nets", "10.1.0.10/32"]
    result = runner.invoke(app, shrunk)
    assert result.exit_code == 2 and "pass --force" in result.output and known.read_bytes() == before
    assert runner.invoke(app, [*shrunk, "--force"]).exit_code == 0
    shrunk_count = known_count(known)
    assert 0 < shrunk_count < len(before.splitlines()) // 2
    Inventory(store, nets="all").export_known(known)  # growing back needs no force
    Inventory(store, nets="10.1.0.10/32").export_known(known, force=True)
    Inventory(store, nets="all").export_known(known)
    with pytest.raises(InventoryError, match="more than 50%"):
        Inventory(store, nets="10.1.0.10/32").export_known(known)


def test_killed_exports_leave_no_temporary_after_the_next_run(store: Path, tmp_path: Path) -> None:
    known, _ = _baseline(store, tmp_path)
    code = (
        "import sys, time\n"
        "from synack.inventory import Inventory, known_export\n"
        "real = known_export.write_known\n"
        "def slow(out, *a):\n"
        "    n = real(out, *a); out.flush(); time.sleep(60); return n\n"
        "known_export.write_known = slow\n"
        f"Inventory({str(store)!r}, nets='all').export_known({str(known)!r})\n"
    )
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(f".known.tsv.{proc.pid}.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Each export removes what the one killed before it left: one temporary is left by the last kill.
    assert len(list(tmp_path.glob(".known.tsv.*.tmp"))) == 1
    assert known_count(known) > 5  # the old file always intact
    assert runner.invoke(app, ["export-known", "--store", str(store), "--nets", "all", "-o", str(known)]).exit_code == 0
    assert not list(tmp_path.glob(".known.tsv.*.tmp"))


def test_an_unknown_sensor_is_named_with_close_matches_not_every_sensor(store: Path) -> None:
    result = runner.invoke(app, ["servers", "--store", str(store), "--sensor", "edge-2"])
    note = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert note == ["note: the store holds no records from sensor 'edge-2' (did you mean 'edge-1'?)"]


@pytest.mark.parametrize("victim", ["partial", "roll-up"])
def test_an_ingest_that_meets_a_damaged_aggregate_sets_it_aside_and_goes_on(tmp_path: Path, victim: str) -> None:
    """The next day's logs make 2026-11-19 settled: rolling it up reads its
    coarse partials and the month's roll-up. Before: 'internal error
    (ArrowInvalid ...)', exit 2, nothing ingested until `check --repair`."""
    days = sorted(p for p in SAMPLES.iterdir() if p.name.startswith("2026"))
    store, reference = tmp_path / "store", tmp_path / "reference"
    ingest_paths(days[:2] + [days[2]], store, chunk_bytes=3000)
    ingest_paths(list(SAMPLES.iterdir()), reference, chunk_bytes=3000)
    snap = take_snapshot(locate(store))
    if victim == "partial":
        coarse = [p for p in snap.partials if p.day == "2026-11-19" and p.coarse & COARSE_CLIENTS]
        path = coarse[-1].paths(store)[1]
    else:
        (rollup,) = snap.rollups.values()
        path = rollup.paths(store)[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    result = runner.invoke(app, ["ingest", *map(str, SAMPLES.iterdir()), "--store", str(store)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note: set the damaged")]
    assert len(notes) == 1 and path.name in notes[0], result.output
    assert (store / "damaged" / path.relative_to(store)).exists()
    for query in ("servers", "clients", "closed"):
        args = ["--nets", "all", "-f", "csv"]
        ours = runner.invoke(app, [query, "--store", str(store), *args])
        theirs = runner.invoke(app, [query, "--store", str(reference), *args])
        assert ours.exit_code == 0 and ours.output == theirs.output, query
    assert runner.invoke(app, ["check", "--store", str(store)]).exit_code == 0


@pytest.mark.parametrize("interval", ["0", "-5"])
def test_watch_refuses_an_interval_that_is_not_positive(tmp_path: Path, interval: str) -> None:
    """Before: accepted, and an idle watch busy-looped at ~85% of a core."""
    result = runner.invoke(app, ["watch", str(SAMPLES), "--store", str(tmp_path / "s"), "--interval", interval])
    assert result.exit_code == 2 and "--interval" in result.output and not (tmp_path / "s").exists()


def test_watch_once_fails_when_its_export_fails(tmp_path: Path) -> None:
    """Before: `watch --once --export-known FILE` exited 0 when the export failed: cron never saw it."""
    missing = tmp_path / "no-such-dir" / "known.tsv"
    result = runner.invoke(app, ["watch", str(SAMPLES), "--store", str(tmp_path / "s"), "--once", "--nets", "all",
                                 "--export-known", str(missing)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert '"event": "error"' in result.output and not missing.exists()
    ok = runner.invoke(app, ["watch", str(SAMPLES), "--store", str(tmp_path / "s"), "--once", "--nets", "all",
                             "--export-known", str(tmp_path / "known.tsv")])  # fmt: skip
    assert ok.exit_code == 0 and known_count(tmp_path / "known.tsv") > 5
