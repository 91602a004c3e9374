"""The store's partial aggregates: upgrade from an older ledger, version
refusal, tiered compaction and crashes inside it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import inventory
from cli import app
from ingest.conn_ingest import ingest_paths
from ingest.errors import StoreError
from ingest.partials import FANOUT, Partial, coarse_merges
from ingest.store import LEDGER_VERSION, Store
from samples.generate import OUT

ROOT = Path(__file__).resolve().parents[1]


def _answers(store: Path) -> list[pd.DataFrame]:
    return [inventory.servers(store, nets="all"), inventory.client_pairs(store, nets="all"),
            inventory.closed(store, nets="all"), inventory.new_servers(store, "2026-11-20", nets="all")]  # fmt: skip


def _same(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> None:
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)


@pytest.fixture(scope="module")
def sample_answers(tmp_path_factory: pytest.TempPathFactory) -> list[pd.DataFrame]:
    store = tmp_path_factory.mktemp("ref") / "store"
    ingest_paths([OUT], store)
    return _answers(store)


def _make_version_1(store: Path) -> None:
    """Turn a store into what synack wrote before partials: ledger version 0/1, dailies under daily/."""
    db = sqlite3.connect(store / "ledger.sqlite")
    db.executescript("DROP TABLE partials; DROP TABLE day_sensors; PRAGMA user_version = 0;")
    db.close()
    shutil.rmtree(store / "aggregates")
    (store / "daily" / "servers" / "date=2026-11-18").mkdir(parents=True)
    (store / "daily" / "servers" / "date=2026-11-18" / "part.parquet").write_bytes(b"old")


def test_an_older_store_is_answered_from_memory_then_upgraded(
    tmp_path: Path, sample_answers: list[pd.DataFrame]
) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    _make_version_1(store)
    assert inventory.upgrade_needed(store)
    _same(_answers(store), sample_answers)  # answered from the records, without writing
    assert not (store / "aggregates").exists()
    result = CliRunner().invoke(app, ["servers", "--store", str(store)])
    assert result.exit_code == 0 and "older synack" in result.stderr and len(result.stderr.splitlines()) == 1
    summary = ingest_paths([OUT], store)  # nothing new to read; the upgrade runs
    assert summary.rows == 0 and len(summary.upgraded) == 4
    assert not inventory.upgrade_needed(store) and not (store / "daily").exists()
    _same(_answers(store), sample_answers)
    db = sqlite3.connect(store / "ledger.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == LEDGER_VERSION
    assert (
        db.execute("SELECT sum(rows) FROM day_sensors").fetchone()[0]
        == db.execute("SELECT sum(rows) FROM days").fetchone()[0]
    )


def test_rebuild_recomputes_the_same_aggregates(tmp_path: Path, sample_answers: list[pd.DataFrame]) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    for path in (store / "aggregates").rglob("*.parquet"):
        path.write_bytes(b"damaged")
    result = CliRunner().invoke(app, ["rebuild", "--store", str(store)])
    assert result.exit_code == 0 and "4 days" in result.stdout
    _same(_answers(store), sample_answers)


def test_a_newer_ledger_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    db = sqlite3.connect(store / "ledger.sqlite")
    db.execute(f"PRAGMA user_version = {LEDGER_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer synack"):
        with Store.open(store):
            pass
    for command in (["servers"], ["ingest", str(OUT)]):
        result = CliRunner().invoke(app, [*command, "--store", str(store)])
        assert result.exit_code != 0 and "newer synack" in result.stderr
        assert "Traceback" not in result.output


def _partial(name: str, level: int, rows: int, t: int) -> Partial:
    return Partial(name, "2026-11-21", "s", 0, 0, t, t, rows // 2, rows - rows // 2, rows, level, True, True)


def test_tiered_plans_merge_fanout_partials_of_a_level_within_the_row_bound() -> None:
    small = [_partial(f"p{i}", 0, 10, i) for i in range(FANOUT * 2 + 3)]
    plans = coarse_merges(small, settled=False)
    assert [len(p) for p in plans] == [FANOUT, FANOUT]
    assert [p.name for p in plans[0]] == [f"p{i}" for i in range(FANOUT)]  # the oldest first
    assert coarse_merges(small[: FANOUT - 1], settled=False) == []
    huge = [_partial(f"h{i}", 0, 600_000, 100 + i) for i in range(FANOUT)]
    assert coarse_merges(huge, settled=False) == []  # a merge never reads more than MERGE_ROWS
    settled = coarse_merges(small[:3] + huge[:2], settled=True)
    assert [[p.name for p in group] for group in settled] == [["p0", "p1", "p2", "h0"]]


@pytest.mark.parametrize("fault", ["merge-committed:2", "compaction-committed:1", "ledger-committed:40"])
def test_a_kill_inside_a_merge_loses_nothing(tmp_path: Path, fault: str, sample_answers: list[pd.DataFrame]) -> None:
    store = tmp_path / "store"
    code = (
        "from pathlib import Path; from ingest.conn_ingest import ingest_paths; "
        f"ingest_paths([Path({str(OUT)!r})], Path({str(store)!r}), chunk_bytes=800)"
    )
    env = {**os.environ, "SYNACK_FAULT": fault}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    ingest_paths([OUT], store, chunk_bytes=800)  # recovery, then the rest
    assert not list(store.rglob(".*.tmp"))
    _same(_answers(store), sample_answers)
    listed = {p for day in inventory.dailies.read_catalog(store).coarse.values() for p in day}
    on_disk = {p.stem for p in (store / "aggregates" / "servers").rglob("*.parquet")}
    assert {p.name for p in listed} <= on_disk
