"""The store's partial aggregates: upgrade from an older ledger, version
refusal, tiered compaction and crashes inside it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.compaction import threaded_merges
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import StoreError
from synack.ingest.partials import (
    CLIENTS,
    COARSE,
    COARSE_CLIENTS,
    COARSE_SERVERS,
    FANOUT,
    KINDS,
    LARGE_CLIENT_ROWS,
    MERGE_ROWS,
    SERVERS,
    Partial,
    coarse_merges,
    merge_partials,
    merged_kinds,
    merged_name,
    merged_partial,
)
from synack.ingest.rollups import ROLLUP_MERGE_ROWS, Rollup, plan_steps
from synack.ingest.store import LEDGER_VERSION, Store
from synack.ingest.store_check import check_store
from synack.ingest.store_files import FileStamp, locate, tmp_name
from synack.samples.generate import OUT
from tests import shorthands as inventory
from tests.conftest import without_rollups

ROOT = Path(__file__).resolve().parents[1]
CRASH = Path(__file__).resolve().parent / "crash_entry.py"


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
    db.executescript("DROP TABLE partials; DROP TABLE day_sensors; DROP TABLE meta; PRAGMA user_version = 0;")
    db.close()
    (store / "synack-store.json").unlink()  # stores had no marker then
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


def test_a_version_3_ledger_answers_then_migrates_its_coarse_flags(
    tmp_path: Path, sample_answers: list[pd.DataFrame]
) -> None:
    """Before version 4 a partial's coarse flag was 1 for both kinds: read
    as both, then rewritten as COARSE by the next ingest."""
    store = tmp_path / "store"
    ingest_paths([OUT], store, chunk_bytes=800)
    db = sqlite3.connect(store / "ledger.sqlite")
    assert db.execute("SELECT count(*) FROM partials WHERE coarse = ?", (COARSE,)).fetchone()[0] > 0
    db.executescript(
        f"UPDATE partials SET coarse = 1 WHERE coarse = {COARSE}; DROP TABLE meta; PRAGMA user_version = 3;"
    )
    db.close()
    (store / "synack-store.json").unlink()  # stores had no marker then
    _same(_answers(store), sample_answers)
    ingest_paths([OUT], store)
    db = sqlite3.connect(store / "ledger.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == LEDGER_VERSION
    assert db.execute("SELECT count(*) FROM partials WHERE coarse = 1").fetchone()[0] == 0
    db.close()
    _same(_answers(store), sample_answers)


def test_rebuild_recomputes_the_same_aggregates(tmp_path: Path, sample_answers: list[pd.DataFrame]) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    for path in (store / "aggregates").rglob("*.parquet"):
        path.write_bytes(b"damaged")
    result = CliRunner().invoke(app, ["rebuild", "--store", str(store)])
    assert result.exit_code == 0 and "4 days" in result.stdout
    _same(_answers(store), sample_answers)


def test_client_aggregates_written_before_services_answer_empty_until_rebuilt(
    tmp_path: Path, sample_answers: list[pd.DataFrame]
) -> None:
    """Client partials and roll-ups of an older synack have no services
    column: queries answer (services empty, nothing fails) and `synack
    rebuild` brings the services back."""
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    for folder in ("aggregates", "rollups"):
        for path in (store / folder / "clients").rglob("*.parquet"):
            table = pq.read_table(path)
            pq.write_table(table.drop_columns(["services"]), path)
    with sqlite3.connect(store / "ledger.sqlite") as db:  # files of an older synack carry no stamps
        db.execute("UPDATE partials SET client_size = NULL, client_crc = NULL")
        db.execute("UPDATE rollups SET client_size = NULL, client_crc = NULL")
    old = inventory.client_pairs(store, nets="all")
    assert len(old) == len(sample_answers[1]) and set(old["services"]) == {""}
    assert set(inventory.clients(store, nets="all")["services"]) == {""}
    assert CliRunner().invoke(app, ["rebuild", "--store", str(store)]).exit_code == 0
    _same(_answers(store), sample_answers)
    assert set(inventory.client_pairs(store, nets="all")["services"]) > {""}


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
    return Partial(name, "2026-11-21", "s", 0, 0, t, t, rows // 2, rows - rows // 2, rows, level, True, COARSE)


def test_tiered_plans_merge_fanout_partials_of_a_level_within_the_row_bound() -> None:
    small = [_partial(f"p{i}", 0, 10, i) for i in range(FANOUT * 2 + 3)]
    plans = coarse_merges(small, settled=False)
    assert [len(p) for p in plans] == [FANOUT, FANOUT]
    assert [p.name for p in plans[0]] == [f"p{i}" for i in range(FANOUT)]  # the oldest first
    assert coarse_merges(small[: FANOUT - 1], settled=False) == []
    huge = [_partial(f"h{i}", 0, 600_000, 100 + i) for i in range(FANOUT)]
    assert coarse_merges(huge, settled=False) == []  # a merge never reads more than MERGE_ROWS
    settled = coarse_merges(small[:3] + huge[:2], settled=True)
    # Their client rows are large: only their server rows could merge, apart
    # from the small partials, and those with their lists exceed MERGE_ROWS.
    assert [[p.name for p in group] for group in settled] == [["p0", "p1", "p2"]]
    assert merged_kinds(settled[0], fine=False) == (SERVERS, CLIENTS)


def test_large_client_rows_are_left_while_their_server_rows_merge() -> None:
    """A batch ingest's chunks of many distinct client pairs: their server
    rows merge (sized by server rows), their client rows stay; the servers
    merge's partial then serves whole-day server reads only."""
    wide = [replace(_partial(f"w{i}", 0, 0, i), server_rows=5_000, client_rows=LARGE_CLIENT_ROWS, records=40_000)
            for i in range(FANOUT + 1)]  # fmt: skip
    (group,) = coarse_merges(wide, settled=False)
    assert group == wide[:FANOUT] and merged_kinds(group, fine=False) == (SERVERS,)
    assert merged_name(group, fine=False).startswith("s1-")
    written = {SERVERS: (30_000, FileStamp(1, 1)), CLIENTS: (0, FileStamp(1, 1))}
    merged = merged_partial(group, merged_name(group, fine=False), written, fine=False)
    assert merged.coarse == COARSE_SERVERS and merged.level == 1
    left = [replace(p, coarse=COARSE_CLIENTS) for p in group] + [merged, wide[FANOUT]]
    assert coarse_merges(left, settled=True) == [[merged, wide[FANOUT]]]  # servers only; the client rows stay
    # Sized by server rows plus records (their client lists): at most MERGE_ROWS of those.
    heavy = [replace(p, records=MERGE_ROWS // 4) for p in wide]
    assert coarse_merges(heavy, settled=False) == [] and len(coarse_merges(heavy, settled=True)[0]) == 3
    narrow = [replace(p, client_rows=LARGE_CLIENT_ROWS - 1) for p in wide]
    assert merged_kinds(coarse_merges(narrow, settled=False)[0], fine=False) == KINDS


@pytest.mark.parametrize(
    ("fault", "large"),
    [("merge-committed:2", None), ("merge-committed:2", 1), ("compaction-committed:1", None),
     ("ledger-committed:40", None), ("rollup-committed:1", None), ("rollup-committed:1", 1)],
)  # fmt: skip
def test_a_kill_inside_a_merge_loses_nothing(tmp_path: Path, fault: str, large: int | None,
                                             sample_answers: list[pd.DataFrame]) -> None:  # fmt: skip
    """`large`: LARGE_CLIENT_ROWS in the killed run (1: its merges are servers merges)."""
    store = tmp_path / "store"
    code = (
        "from pathlib import Path; from synack.ingest.conn_ingest import ingest_paths; "
        + (f"import synack.ingest.partials as p; p.LARGE_CLIENT_ROWS = {large}; " if large else "")
        + f"ingest_paths([Path({str(OUT)!r})], Path({str(store)!r}), chunk_bytes=800)"
    )
    proc = subprocess.run([sys.executable, str(CRASH), fault, "-c", code], cwd=ROOT, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    ingest_paths([OUT], store, chunk_bytes=800)  # recovery, then the rest
    assert not list(store.rglob(".*.tmp"))
    _same(_answers(store), sample_answers)
    listed = {p for day in inventory.dailies.read_catalog(store).coarse.values() for p in day}
    on_disk = {p.stem for p in (store / "aggregates" / "servers").rglob("*.parquet")}
    assert {p.name for p in listed} <= on_disk


def test_threaded_merges_give_the_serial_partials_and_stop_starting_when_abandoned(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store, chunk_bytes=800)
    db = sqlite3.connect(store / "ledger.sqlite")
    fine = [Partial(*row[:10], level=row[10], fine=bool(row[11]), coarse=int(row[12])) for row in db.execute(
        "SELECT name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, server_rows, client_rows, records, level, "
        "fine, coarse FROM partials WHERE fine = 1 AND day = '2026-11-21' ORDER BY chunk_lo")]  # fmt: skip
    db.close()
    groups = [fine[i : i + 2] for i in range(0, len(fine) - 1, 2)]
    assert len(groups) >= 6
    files = locate(store)

    def temporaries() -> set[Path]:
        return set(store.rglob(".*.tmp"))

    serial = []
    for group in groups:
        serial.append(merge_partials(files, group, fine=False))
        for path in serial[-1].paths(files.root):
            Path(tmp_name(path)).unlink()
    submitted: list[int] = []
    running, most = 0, 0
    guard = threading.Lock()

    def counted(fn: Any, *args: Any) -> Any:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        try:
            return fn(*args)
        finally:
            with guard:
                running -= 1

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            submitted.append(len(submitted))
            return super().submit(counted, fn, *args)

    with CountingPool(2) as pool:
        assert [merged for _, merged in threaded_merges(files, pool, 2)(groups)] == serial
        assert len(submitted) == 2 * len(groups) and most <= 2  # a task per kind, never more than the threads
        for merged in serial:
            for path in merged.paths(files.root):
                Path(tmp_name(path)).unlink()
        submitted.clear()
        run = threaded_merges(files, pool, 2)(groups)
        group, first = next(run)
        run.close()  # abandoned (a stop): no more merges start; those under way leave nothing behind
    assert (group, first) == (groups[0], serial[0])
    assert len(submitted) <= 2 * 3  # the merge it took, the next one, and no more
    assert temporaries() == {Path(tmp_name(p)) for p in first.paths(files.root)}


def _ledger_rollups(store: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(store / "ledger.sqlite")
    rows = db.execute("SELECT month, name, days FROM rollups WHERE length(month) = 7 ORDER BY month").fetchall()
    db.close()
    return rows


def test_settled_days_are_read_from_their_months_rollup(tmp_path: Path, sample_answers: list[pd.DataFrame]) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    (row,) = _ledger_rollups(store)
    month, name, days = row
    # The samples run 2026-11-18 .. 11-21: the days two or more before the newest are settled.
    assert month == "2026-11" and sorted(json.loads(days)) == ["2026-11-18", "2026-11-19"]
    assert (store / "rollups" / "servers" / "month=2026-11" / f"{name}.parquet").exists()
    _same(_answers(without_rollups(store, tmp_path / "plain")), sample_answers)
    # Whole-range queries read the roll-up, not the days it covers ...
    for day in ("2026-11-18", "2026-11-19"):
        for path in (store / "aggregates").glob(f"*/date={day}/*.parquet"):
            path.write_bytes(b"not read")
    _same(_answers(store), sample_answers)
    # ... and a range that cuts the month short of a covered day does not use it.
    with pytest.raises(StoreError, match="is damaged .*synack check --repair"):
        inventory.servers(store, since="2026-11-19", nets="all")


def test_a_rollup_whose_days_changed_is_not_read_then_redone(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    before = inventory.servers(store, nets="all")
    db = sqlite3.connect(store / "ledger.sqlite")
    db.execute("UPDATE days SET generation = generation + 1 WHERE day = '2026-11-18'")  # a late commit
    db.commit()
    (generation,) = db.execute("SELECT generation FROM days WHERE day = '2026-11-18'").fetchone()
    db.close()
    for path in (store / "rollups").rglob("*.parquet"):
        path.write_bytes(b"stale")
    pd.testing.assert_frame_equal(inventory.servers(store, nets="all"), before)  # read from the days
    with Store.open(store) as opened:
        assert opened.roll_up_months() == 1
    ((_, _, days),) = _ledger_rollups(store)
    assert json.loads(days)["2026-11-18"] == generation
    assert not list((store / "rollups").rglob(".*.tmp"))
    pd.testing.assert_frame_equal(inventory.servers(store, nets="all"), before)


def _day_partial(day: str, rows: int) -> Partial:
    return Partial(f"p-{day}", day, "s", 0, 0, 0, 0, rows, 0, rows)


def test_rollup_steps_add_settled_days_within_the_row_bound() -> None:
    days = {f"2026-11-{d:02d}": 1 for d in range(1, 6)}
    coarse = {day: [_day_partial(day, 100)] for day in days}
    (step,) = plan_steps({}, days, coarse, settled="2026-11-04")
    assert step.base is None and sorted(step.add) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    current = {"2026-11": Rollup("2026-11", "r", {"2026-11-01": 1, "2026-11-02": 1}, 200, 0)}
    (step,) = plan_steps(current, days, coarse, settled="2026-11-04")
    assert step.base is current["2026-11"] and sorted(step.add) == ["2026-11-03"]
    stale = {**days, "2026-11-02": 2}
    (step,) = plan_steps(current, stale, coarse, settled="2026-11-04")
    assert step.base is None and len(step.add) == 3  # started afresh
    big = {day: [_day_partial(day, ROLLUP_MERGE_ROWS // 2 + 1)] for day in days}
    assert [sorted(s.add) for s in plan_steps({}, days, big, settled="2026-11-04")] == [["2026-11-01"]]
    too_big = {**coarse, "2026-11-01": [_day_partial("x", ROLLUP_MERGE_ROWS + 1)]}
    assert plan_steps({}, days, too_big, settled="2026-11-04") == []
    months = {"2026-10-31": 1, "2026-11-01": 1}
    both = plan_steps({}, months, {d: [_day_partial(d, 1)] for d in months}, settled="2026-11-05")
    assert [s.month for s in both] == ["2026-10", "2026-11"]


def test_rebuild_rederives_the_outcomes_an_older_synack_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written before `inferred` existed keeps its labels until `synack rebuild`,
    which re-derives each record's outcome from its stored history and rebuilds the aggregates."""
    from synack.ingest import handshake
    from synack.ingest.engines import rebuild_store
    from synack.inventory import Inventory
    from tests.conftest import conn_header, conn_line, store_table

    log = tmp_path / "conn.log"
    log.write_text(
        conn_header()
        + conn_line("C1", resp="10.5.0.1", resp_p=443, history="SADdafF", state="SF")
        + conn_line("C2", resp="10.5.0.2", resp_p=22)
        + conn_line("C3", resp="10.5.0.3", resp_p=25, history="S", state="S0", resp_pkts="0")
    )
    store = tmp_path / "store"
    with monkeypatch.context() as old_rules:  # the rules before a missed SYN-ACK was recognized
        old_rules.setitem(handshake._HISTORY_TESTS, "data_first", "^$x")
        old_rules.setitem(handshake._HISTORY_TESTS, "ack", "^$x")
        ingest_paths([log], store)

    def outcomes() -> dict[str, str]:
        table = store_table(store)
        return dict(zip(table.column("uid").to_pylist(), table.column("outcome").cast("string").to_pylist()))

    assert outcomes() == {"C1": "ambiguous", "C2": "open", "C3": "unanswered"}
    assert set(Inventory(store, nets="all").servers()["server_h"]) == {"10.5.0.2"}

    rebuild_store(store)
    assert outcomes() == {"C1": "inferred", "C2": "open", "C3": "unanswered"}
    servers = Inventory(store, nets="all").servers().set_index("server_h")["synack_seen"].to_dict()
    assert servers == {"10.5.0.1": False, "10.5.0.2": True}
    files_before = sorted(p.name for p in (store / "conn").rglob("*.parquet"))
    rebuild_store(store)  # nothing left to re-derive: the record files stay as they are
    assert sorted(p.name for p in (store / "conn").rglob("*.parquet")) == files_before
    assert outcomes()["C1"] == "inferred"


def test_a_settled_days_many_small_record_files_become_one_and_answers_stay(
    tmp_path: Path, make_conn_log: Callable[..., Path]
) -> None:
    """Hourly archives of a quiet sensor: a file per hour, then one file per settled day."""
    from synack.ingest.compaction import SMALL_DAY_FILES
    from tests.conftest import conn_line

    start = 1793491200.0  # 2026-11-01
    logs = [make_conn_log(f"conn.{h:03d}.log", [conn_line(f"C{h}x{i}", ts=start + h * 3600 + i, orig=f"10.0.0.{i + 1}",
                                                          resp_p=80 + h % 5) for i in range(3)])
            for h in range(4 * 24)]  # fmt: skip
    store = tmp_path / "store"
    ingest_paths(logs[: 2 * 24], store)
    plain = without_rollups(store, tmp_path / "plain-before")
    expected = [inventory.servers(plain, nets="all"), inventory.servers(plain, "2026-11-01T06:30", "2026-11-01T18:00",
                                                                        nets="all")]  # fmt: skip
    ingest_paths(logs[2 * 24 :], store)  # days 1 and 2 settle: each of their 24 files is merged into one
    with Store.open(store) as opened:
        for day in ("2026-11-01", "2026-11-02"):
            assert len(list((store / "conn" / f"date={day}").glob("*.parquet"))) == 1
            assert [p.source_id for p in opened.ledger.partials(day=day, fine=True)] == [f"day-{day}"]
    assert len(list((store / "conn" / "date=2026-11-04").glob("*.parquet"))) == 24 >= SMALL_DAY_FILES  # not settled
    pd.testing.assert_frame_equal(
        inventory.servers(store, "2026-11-01T06:30", "2026-11-01T18:00", nets="all"), expected[1]
    )  # a range cutting the merged day: re-aggregated from its one file
    assert len(inventory.servers(store, nets="all")) >= len(expected[0])
    with Store.open(store) as opened:
        assert check_store(opened).ok
        assert opened.rebuild_aggregates(["2026-11-01"]) == ["2026-11-01"]
    pd.testing.assert_frame_equal(inventory.servers(store, "2026-11-01T06:30", "2026-11-01T18:00", nets="all"),
                                  expected[1])  # fmt: skip
    assert len(inventory.client_pairs(store, nets="all")) == len(inventory.client_pairs(
        without_rollups(store, tmp_path / "plain-after"), nets="all"))  # fmt: skip


def test_a_kill_inside_a_day_compaction_loses_nothing(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    from tests.conftest import conn_line

    start = 1793491200.0  # 2026-11-01
    logs = [make_conn_log(f"hourly/conn.{h:03d}.log", [conn_line(f"C{h}k{i}", ts=start + h * 3600 + i,
                                                                 orig=f"10.0.0.{i + 1}", resp_p=80 + h % 5)
                                                       for i in range(3)]) for h in range(3 * 24)]  # fmt: skip
    reference = tmp_path / "reference"
    ingest_paths(logs, reference)
    store = tmp_path / "store"
    code = (
        "from pathlib import Path; from synack.ingest.conn_ingest import ingest_paths; "
        f"ingest_paths([Path({str(tmp_path / 'hourly')!r})], Path({str(store)!r}))"
    )
    proc = subprocess.run([sys.executable, str(CRASH), "day-compaction-committed:1", "-c", code], cwd=ROOT,
                          capture_output=True)  # fmt: skip
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    ingest_paths(logs, store)  # recovery, then the rest
    assert not list(store.rglob(".*.tmp"))
    assert len(list((store / "conn" / "date=2026-11-01").glob("*.parquet"))) == 1
    for query in (lambda s: inventory.servers(s, nets="all"), lambda s: inventory.client_pairs(s, nets="all"),
                  lambda s: inventory.servers(s, "2026-11-01T05:00", "2026-11-01T07:30", nets="all")):  # fmt: skip
        pd.testing.assert_frame_equal(query(store), query(reference))
    with Store.open(store) as opened:
        assert check_store(opened).ok
