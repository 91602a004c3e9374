"""A damaged store: every kind of damage is one line naming what is wrong,
never a traceback and never a wrong answer ("no server ports")."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synack.ingest.conn_ingest import ingest_paths
from tests.conftest import conn_header, conn_line, run_synack, write_log

STORE_LOG_LINES = 40


def make_store(tmp_path: Path) -> Path:
    text = conn_header() + "".join(conn_line(f"C{i}", resp_p=80 + i % 3) for i in range(STORE_LOG_LINES))
    store = tmp_path / "store"
    ingest_paths([write_log(tmp_path / "logs" / "conn.log", text)], store)
    return store


def assert_one_line_error(run: subprocess.CompletedProcess[str], *words: str) -> None:
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


def garble(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database at all\n" * 200)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:300])


def empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [garble, truncate, empty], ids=lambda f: f.__name__)
def test_a_damaged_ledger_is_one_line_for_queries_and_ingest(tmp_path: Path, damage: object) -> None:
    store = make_store(tmp_path)
    damage(store / "ledger.sqlite")  # type: ignore[operator]
    assert_one_line_error(run_synack("servers", "--store", str(store)), "ledger", "damaged")
    assert_one_line_error(run_synack("report", "--store", str(store), "-o", str(tmp_path / "r")), "ledger")
    assert_one_line_error(run_synack("ingest", str(tmp_path / "logs"), "--store", str(store)), "ledger", "damaged")


def test_a_ledger_without_its_tables_is_one_line(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with sqlite3.connect(store / "ledger.sqlite") as db:
        db.execute("DROP TABLE partials")
    assert_one_line_error(run_synack("servers", "--store", str(store)), "ledger", "damaged")


def test_a_store_whose_ledger_was_deleted_is_one_line(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    (store / "ledger.sqlite").unlink()
    assert_one_line_error(run_synack("servers", "--store", str(store)), "holds records but no ledger", "ledger.sqlite")


def test_no_store_at_all_is_one_line_not_an_empty_answer(tmp_path: Path) -> None:
    assert_one_line_error(run_synack("servers", "--store", str(tmp_path / "nowhere")), "no synack store")


@pytest.mark.parametrize("how", ["bitflip", "truncate"])
def test_a_damaged_aggregate_file_is_one_line_and_rebuild_repairs_it(tmp_path: Path, how: str) -> None:
    store = make_store(tmp_path)
    before = run_synack("servers", "--store", str(store), "--format", "csv")
    assert before.returncode == 0 and before.stdout.count("\n") == 4  # header and three ports
    victim = sorted((store / "aggregates" / "servers").rglob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    if how == "bitflip":
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    victim.write_bytes(bytes(data))
    assert_one_line_error(run_synack("servers", "--store", str(store)), "damaged", "synack check")
    rebuild = run_synack("rebuild", "--store", str(store))
    assert rebuild.returncode == 0, rebuild.stderr
    after = run_synack("servers", "--store", str(store), "--format", "csv")
    assert after.returncode == 0 and after.stdout == before.stdout


def test_a_failed_first_run_that_left_only_the_lock_is_not_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "lock").write_text("")
    log = write_log(tmp_path / "logs" / "conn.log", conn_header() + conn_line("C1"))
    summary = ingest_paths([log], store)
    assert summary.rows == 1


def test_an_empty_ledger_of_a_first_run_that_wrote_nothing_is_not_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "ledger.sqlite").write_bytes(b"")
    run = run_synack("servers", "--store", str(store))
    assert run.returncode == 0 and "no server ports" in run.stdout + run.stderr
    log = write_log(tmp_path / "logs" / "conn.log", conn_header() + conn_line("C1"))
    assert ingest_paths([log], store).rows == 1


def test_check_says_a_healthy_store_agrees(tmp_path: Path) -> None:
    """On one line, however long the store's path: printed to a pipe, the
    line was cut at 100 columns (found when the suite ran under xdist)."""
    deep = tmp_path / ("a-long-directory-name-" * 5)
    deep.mkdir()
    store = make_store(deep)
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 0 and run.stdout.endswith(" files agree\n"), run.stderr
    assert run.stdout.count("\n") == 1 and run.stdout.startswith(str(store))


def test_check_finds_a_copied_record_file_and_repair_moves_it_aside(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    before = run_synack("servers", "--store", str(store), "--format", "csv").stdout
    original = sorted((store / "conn").rglob("*.parquet"))[0]
    copy = original.with_name("copy-" + original.name)
    copy.write_bytes(original.read_bytes())
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 1 and copy.name in run.stderr and "does not list" in run.stderr
    repaired = run_synack("check", "--repair", "--store", str(store))
    assert repaired.returncode == 0 and "moved" in repaired.stderr, repaired.stderr
    assert not copy.exists() and list((store / "damaged").rglob(copy.name))
    assert run_synack("check", "--store", str(store)).returncode == 0
    assert run_synack("servers", "--store", str(store), "--format", "csv").stdout == before


def test_a_deleted_record_file_is_found_refused_by_rebuild_and_repaired_by_check(tmp_path: Path) -> None:
    """The repair keeps the day's intact aggregates: the answers the lost records gave stay (issue 31)."""
    store = make_store(tmp_path)
    before = run_synack("servers", "--store", str(store), "-f", "csv")
    victim = sorted((store / "conn").rglob("*.parquet"))[0]
    victim.unlink()
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 1 and "missing" in run.stderr
    assert_one_line_error(run_synack("rebuild", "--store", str(store)), "missing", "synack check")
    repaired = run_synack("check", "--repair", "--store", str(store))
    assert repaired.returncode == 0 and f"lost the {STORE_LOG_LINES} records" in repaired.stderr, repaired.stderr
    assert "aggregates are intact and kept" in repaired.stderr
    assert run_synack("check", "--store", str(store)).returncode == 0
    answer = run_synack("servers", "--store", str(store), "-f", "csv")
    assert answer.returncode == 0 and answer.stdout == before.stdout and answer.stdout.count("\n") > 1


def test_check_finds_a_damaged_partial_and_repair_rebuilds_it(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    before = run_synack("servers", "--store", str(store), "--format", "csv").stdout
    victim = sorted((store / "aggregates" / "clients").rglob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 1 and "where the ledger recorded" in run.stderr
    assert run_synack("check", "--repair", "--store", str(store)).returncode == 0
    assert run_synack("servers", "--store", str(store), "--format", "csv").stdout == before


def test_temporary_files_left_by_a_kill_are_removed_by_the_next_open(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    day_dir = sorted((store / "aggregates" / "servers").iterdir())[0]
    leftover = day_dir / ".killed-mid-rebuild.parquet.tmp"
    leftover.write_bytes(b"half a file")
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 0, run.stderr
    assert not leftover.exists()


def test_check_catches_a_single_flipped_bit_by_the_page_checksums(tmp_path: Path) -> None:
    """A flipped bit inside a compressed page can decode as other data without
    any error; every page carries a CRC32 that check verifies."""
    store = make_store(tmp_path)
    victim = sorted((store / "conn").rglob("*.parquet"))[0]
    original = victim.read_bytes()
    metadata = pq.ParquetFile(victim).metadata
    silent = None
    for column in range(metadata.num_columns):
        chunk = metadata.row_group(0).column(column)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        for at in range(start, start + chunk.total_compressed_size):
            data = bytearray(original)
            data[at] ^= 0x01
            victim.write_bytes(bytes(data))
            try:
                changed = pq.read_table(victim) != pq.read_table(pa.BufferReader(original))
            except (OSError, pa.ArrowException):
                continue  # this flip is caught anyway
            if changed:
                silent = at
                break
        if silent is not None:
            break
    assert silent is not None, "no flip reads back as other data: the test needs another file"
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 1 and victim.name in run.stderr and "CRC" in run.stderr, run.stderr


def test_check_finds_a_damaged_rollup_and_repair_redoes_it(tmp_path: Path) -> None:
    from synack.samples.generate import OUT

    store = tmp_path / "store"
    ingest_paths([OUT], store)
    before = run_synack("servers", "--store", str(store), "--nets", "all", "--format", "csv").stdout
    (victim,) = (store / "rollups" / "servers").rglob("*.parquet")
    victim.write_bytes(victim.read_bytes()[:100])
    assert_one_line_error(run_synack("servers", "--store", str(store)), "damaged", "synack check")
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 1 and "rollups/servers/month=2026-11" in run.stderr
    assert "where the ledger recorded" in run.stderr
    repaired = run_synack("check", "--repair", "--store", str(store))
    assert repaired.returncode == 0 and "roll-up of 2026-11" in repaired.stderr, repaired.stderr
    assert (store / "damaged" / victim.relative_to(store)).exists()
    assert len(list((store / "rollups" / "servers").rglob("*.parquet"))) == 1  # redone
    assert run_synack("check", "--store", str(store)).returncode == 0
    assert run_synack("servers", "--store", str(store), "--nets", "all", "--format", "csv").stdout == before


def test_repair_after_a_truncated_record_file_keeps_the_intact_aggregates_answers(tmp_path: Path) -> None:
    """Two logs of one day; one record file truncated: the repair reports the lost records, and every
    answer (servers, clients, new ports) stays what the intact aggregates said (issue 31)."""
    store = tmp_path / "store"
    for n, port in ((1, 80), (2, 8443)):
        text = conn_header(opened=f"2026-11-21-1{n}-00-00") + "".join(
            conn_line(f"C{n}x{i}", resp=f"10.1.0.{n}", resp_p=port, ts=1795000000.0 + n * 3600 + i) for i in range(30)
        )
        ingest_paths([write_log(tmp_path / "logs" / f"conn.{n}.log", text)], store)
    queries = [("servers", "--nets", "all"), ("clients", "--nets", "all"), ("new-ports", "--since", "2026-11-01",
                                                                              "--nets", "all")]  # fmt: skip
    before = [run_synack(*q, "--store", str(store), "-f", "csv").stdout for q in queries]
    victim = sorted((store / "conn").rglob("*.parquet"))[0]
    truncate(victim)
    repaired = run_synack("check", "--repair", "--store", str(store))
    assert repaired.returncode == 0, repaired.stderr
    assert "lost the 30 records" in repaired.stderr and "aggregates are intact and kept" in repaired.stderr
    assert run_synack("check", "--store", str(store)).returncode == 0
    after = [run_synack(*q, "--store", str(store), "-f", "csv").stdout for q in queries]
    assert after == before and all(text.count("\n") > 1 for text in before)
    assert (store / "damaged" / victim.relative_to(store)).exists()  # never deleted


def test_a_damaged_identity_file_is_found_and_set_aside_by_repair(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    ssh = {"ts": 1795000000.5, "uid": "C1", "id.orig_h": "10.1.0.9", "id.orig_p": 40000, "id.resp_h": "10.1.0.5",
           "id.resp_p": 22, "server": "SSH-2.0-OpenSSH_9.6", "client": "SSH-2.0-x", "auth_attempts": 0}  # fmt: skip
    (logs / "ssh.log").write_text(json.dumps(ssh) + "\n")
    store = tmp_path / "store"
    assert ingest_paths([logs], store).identities == 1
    victim = next((store / "identity").glob("*.parquet"))
    truncate(victim)
    assert_one_line_error(run_synack("servers", "--store", str(store)), "damaged", "synack check --repair")
    run = run_synack("check", "--store", str(store))
    assert run.returncode == 1 and victim.name in run.stderr
    repaired = run_synack("check", "--repair", "--store", str(store))
    assert repaired.returncode == 0 and "lost the 1 identity facts" in repaired.stderr, repaired.stderr
    assert run_synack("servers", "--store", str(store)).returncode == 0
