"""Readers beside a live writer: synack's own queries and report, and DuckDB
listing the record files, while `watch` ingests, compacts and rolls up.

Before, a query racing a compaction retried four times and then called a
healthy store "damaged or missing"; now each answer comes from one
snapshot whose files a writer retires instead of deleting, so queries
never fail beside a writer, and a reader that lists conn/ never sees a
record twice.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.inventory.daily_report import build_report
from tests import shorthands as inventory
from tests.conftest import conn_header, conn_line
from tests.zeek_sim import ZeekSim

ROOT = Path(__file__).resolve().parents[1]


def _duckdb_count(store: Path) -> int | None:
    """Records DuckDB counts over conn/ (None when a file vanished between its listing and its read)."""
    duckdb = pytest.importorskip("duckdb")
    try:
        return int(duckdb.sql(f"SELECT count(*) FROM read_parquet('{store}/conn/*/*.parquet')").fetchall()[0][0])
    except duckdb.Error:
        return None  # listed, then moved before DuckDB opened it: DuckDB's own race, not a double count


def test_duckdb_over_conn_never_counts_a_record_twice_during_compactions(tmp_path: Path) -> None:
    """A finished source's many small record files are merged into one: the
    files it replaces are hidden before the merged one appears."""
    store, logs = tmp_path / "store", tmp_path / "logs"
    logs.mkdir()
    total = 0
    for n in range(4):  # four logs, each followed in small chunks, then closed and compacted
        log = logs / f"conn{n}.log"
        lines = [conn_line(f"C{n}x{i}", ts=1795046400.0 + n * 3600 + i) for i in range(300)]
        log.write_text(conn_header() + "".join(lines))
        ingest_paths([log], store, chunk_bytes=1200)
        total += len(lines)
        with open(log, "a") as f:
            f.write("#close\t2026-11-21-11-00-00\n")
        done = threading.Event()

        def compact(path: Path = log, finished: threading.Event = done) -> None:
            try:
                ingest_paths([path], store)
            finally:
                finished.set()

        writer = threading.Thread(target=compact)
        writer.start()
        counts = []
        while not done.is_set():
            counts.append(_duckdb_count(store))
        writer.join()
        seen = [c for c in counts if c is not None]
        assert seen and max(seen) <= total, (max(seen), total)
        assert _duckdb_count(store) == total
    assert len(list((store / "conn").rglob("*.parquet"))) == 4  # each source compacted to one file


@pytest.mark.slow
def test_queries_and_a_report_beside_a_compacting_watch_never_fail_and_end_exact(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs", seed=3), tmp_path / "store"
    sim.write(200, partial=False)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "synack", "watch", str(sim.logdir), "--store", str(store), "--interval", "0.2",
         "--chunk-bytes", "1500"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    answers = 0
    failures: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not (store / "ledger.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for burst in range(25):
            sim.write(80)
            if burst % 4 == 3:
                sim.rotate()  # a finished source: its chunks are compacted, its days merged
            for query in (
                lambda: inventory.servers(store, nets="all"),
                lambda: inventory.client_pairs(store, nets="all"),
                lambda: inventory.closed(store, "2026-11-01", nets="all"),
                lambda: build_report(store, "2026-11-21", nets="all"),
            ):
                try:
                    query()
                    answers += 1
                except Exception as err:  # noqa: BLE001 - any failure beside a healthy writer is the bug
                    failures.append(f"{type(err).__name__}: {err}")
    finally:
        watcher.terminate()
        watcher.wait(timeout=60)
    assert not failures, failures[:3]
    assert answers == 100
    sim.finish()
    ingest_paths([sim.logdir], store)
    quiet = tmp_path / "quiet"
    ingest_paths([sim.logdir], quiet)
    for query in (inventory.servers, inventory.client_pairs, inventory.closed):
        pd.testing.assert_frame_equal(query(store, nets="all"), query(quiet, nets="all"))
