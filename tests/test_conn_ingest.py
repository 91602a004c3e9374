"""Ingest into a store: exactly once across re-runs, live files, rotation and crashes."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from synack.ingest import store as store_module
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import StoreError, StoreLocked
from synack.ingest.schema import ZEEK_CONN_FIELDS
from synack.ingest.store import Store
from tests.conftest import CONN_HEADER_FIELDS, conn_header, conn_line, store_table, write_log

MakeLog = Callable[..., Path]


def uids(store: Path) -> list[str]:
    t = store_table(store)
    return sorted(t.column("uid").to_pylist()) if len(t) else []


def test_rerun_adds_nothing(make_conn_log: MakeLog, tmp_path: Path) -> None:
    log = make_conn_log("conn.log", [conn_line(f"C{i}") for i in range(5)])
    store = tmp_path / "store"
    first = ingest_paths([log], store)
    second = ingest_paths([log], store)
    assert first.rows == 5 and second.rows == 0
    assert [f.status for f in second.files] == ["unchanged"]
    assert uids(store) == [f"C{i}" for i in range(5)]


def test_live_file_partial_line_waits_then_rotation_counts_once(tmp_path: Path) -> None:
    logs, store = tmp_path / "logs", tmp_path / "store"
    live = logs / "current" / "conn.log"
    live.parent.mkdir(parents=True)
    header = conn_header()
    lines = [conn_line(f"C{i}", ts=1795000000.0 + i) for i in range(6)]
    live.write_text(header + "".join(lines[:3]) + lines[3][:20])  # line 4 half written

    s1 = ingest_paths([logs], store)
    assert s1.rows == 3 and "incomplete" in s1.files[0].message

    with open(live, "a") as f:
        f.write(lines[3][20:] + lines[4])
    assert ingest_paths([logs], store).rows == 2

    # Rotation: Zeek closes the log, zeekctl moves and compresses it.
    with open(live, "a") as f:
        f.write(lines[5] + "#close\t2026-11-21-11-00-00\n")
    archive = logs / "2026-11-21" / "conn.10:00:00-11:00:00.log.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(live.read_bytes()))
    live.unlink()
    s3 = ingest_paths([logs], store)
    assert s3.rows == 1
    assert uids(store) == [f"C{i}" for i in range(6)]
    assert ingest_paths([logs], store).rows == 0


def test_a_finished_file_without_a_final_newline_gives_its_last_record_once(tmp_path: Path) -> None:
    """A dataset's log that ends without a newline (IoT-23): once nobody has
    written it for FINISHED_AFTER_SECONDS, its last line is its last record."""
    from synack.ingest.log_source import FINISHED_AFTER_SECONDS

    store = tmp_path / "store"
    lines = [conn_line(f"C{i}", ts=1795000000.0 + i) for i in range(4)]
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines)[:-1])  # no newline after C3
    first = ingest_paths([log], store)
    assert first.rows == 3 and "incomplete" in first.files[0].message  # just written: it may grow
    old = os.stat(log).st_mtime - FINISHED_AFTER_SECONDS - 1
    os.utime(log, (old, old))
    second = ingest_paths([log], store)
    assert second.rows == 1 and not second.files[0].message
    assert ingest_paths([log], store).rows == 0
    assert uids(store) == [f"C{i}" for i in range(4)]

    # A whole gzip stream is finished whatever its age.
    archive = tmp_path / "other" / "conn.log.gz"
    archive.parent.mkdir()
    body = conn_header(opened="2026-11-22-10-00-00") + "".join(conn_line(f"G{i}") for i in range(2))
    archive.write_bytes(gzip.compress(body[:-1].encode()))
    assert ingest_paths([archive], tmp_path / "store2").rows == 2


def test_separator_with_a_tab_and_a_clear_error_for_other_files(tmp_path: Path) -> None:
    """zeek-cut reads '#separator<TAB>\\x09' (a hand-edited header); so does synack."""
    log = tmp_path / "conn.log"
    log.write_text(conn_header().replace("#separator \\x09", "#separator\t\\x09", 1) + conn_line("C1"))
    assert log.read_text().startswith("#separator\t\\x09\n")
    assert ingest_paths([log], tmp_path / "store").rows == 1
    other = tmp_path / "x" / "conn.log"
    other.parent.mkdir()
    other.write_text("\n\nhello\n")
    summary = ingest_paths([other], tmp_path / "store")
    assert summary.files[0].status == "error"
    assert "line 3 starts with neither a Zeek header" in summary.files[0].message


def test_archive_of_a_partly_ingested_live_log_adds_only_the_rest(tmp_path: Path) -> None:
    store = tmp_path / "store"
    header = conn_header()
    lines = [conn_line(f"C{i}", ts=1795000000.0 + i) for i in range(8)]
    live = tmp_path / "current" / "conn.log"
    live.parent.mkdir()
    live.write_text(header + "".join(lines[:3]))
    assert ingest_paths([live], store).rows == 3
    archive = tmp_path / "conn.2026-11-21-10-00-00.log.gz"
    archive.write_bytes(gzip.compress((header + "".join(lines) + "#close\tx\n").encode()))
    assert ingest_paths([archive], store).rows == 5
    assert uids(store) == [f"C{i}" for i in range(8)]
    assert ingest_paths([archive, live], store).rows == 0


def test_days_go_to_their_own_partitions(make_conn_log: MakeLog, tmp_path: Path) -> None:
    log = make_conn_log("conn.log", [conn_line("A", ts=1795132200.0 - 600), conn_line("B", ts=1795132200.0 + 600)])
    store = tmp_path / "store"
    summary = ingest_paths([log], store)
    assert summary.days == {"2026-11-19", "2026-11-20"}
    parts = sorted(p.parent.name for p in (store / "conn").rglob("*.parquet"))
    assert parts == ["date=2026-11-19", "date=2026-11-20"]


def test_bad_lines_are_quarantined_once(make_conn_log: MakeLog, tmp_path: Path) -> None:
    log = make_conn_log("conn.log", [conn_line("A"), "garbage line\n", conn_line("B").replace("\t80\t", "\t80x\t")])
    store = tmp_path / "store"
    s = ingest_paths([log], store)
    assert (s.rows, s.quarantined) == (1, 2)
    entries = [json.loads(line) for f in (store / "quarantine").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(e["line"] for e in entries) == [10, 11]
    assert all(e["file"] == str(log) and e["reason"] for e in entries)
    assert any("resp_p (port)" in e["reason"] for e in entries)
    assert ingest_paths([log], store).quarantined == 0
    assert len(list((store / "quarantine").glob("*.jsonl"))) == 1


def test_non_gzip_gz_is_quarantined_and_the_run_goes_on(make_conn_log: MakeLog, tmp_path: Path) -> None:
    bad = tmp_path / "conn.10:00:00-11:00:00.log.gz"
    bad.write_text("this is not gzip")
    good = make_conn_log("conn.log", [conn_line("A")])
    store = tmp_path / "store"
    s = ingest_paths([bad, good], store)
    assert s.rows == 1
    assert [f.status for f in s.files] == ["error", "ingested"]
    assert "not gzip" in s.files[0].message
    (record,) = [json.loads(f.read_text()) for f in (store / "quarantine").glob("file-*.jsonl")]
    assert record["file"] == str(bad) and "gzip" in record["reason"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello world\n", "not a Zeek log"),
        (conn_header().replace("#path\tconn", "#path\thttp"), "'http' log"),
        ('{"ts": 1, "query": "example.com"}\n', "without conn.log fields"),
    ],
)
def test_files_that_are_not_conn_logs_get_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.log"
    path.write_text(content + conn_line("A"))
    s = ingest_paths([path], tmp_path / "store")
    assert [f.status for f in s.files] == ["error"]
    assert message in s.files[0].message


def test_directory_walk_skips_other_logs(tmp_path: Path, make_conn_log: MakeLog) -> None:
    make_conn_log("logs/2026-11-21/conn.10:00:00-11:00:00.log.gz", [conn_line("A")], compress=True)
    (tmp_path / "logs" / "2026-11-21" / "http.10:00:00-11:00:00.log.gz").write_bytes(gzip.compress(b"#x\n"))
    s = ingest_paths([tmp_path / "logs"], tmp_path / "store")
    assert s.rows == 1 and [p.name for p in s.skipped] == ["http.10:00:00-11:00:00.log.gz"]


def test_sensor_from_log_wins_and_option_fills_the_rest(tmp_path: Path) -> None:
    fields = [*ZEEK_CONN_FIELDS[:7], ("sensor", "string")]
    text = (
        conn_header(fields)
        + "1.0\tA\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\tedge-9\n2.0\tB\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\n"
    )
    log = tmp_path / "conn.log"
    log.write_text(text)
    ingest_paths([log], tmp_path / "store", sensor="cli-sensor")
    t = store_table(tmp_path / "store").sort_by("uid")
    assert t.column("sensor").cast("string").to_pylist() == ["edge-9", "cli-sensor"]


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path, make_conn_log: MakeLog) -> None:
    log = make_conn_log("conn.log", [conn_line("A")])
    with Store.open(tmp_path / "store"):
        with pytest.raises(StoreLocked, match="in use by another synack process"):
            ingest_paths([log], tmp_path / "store")
    assert ingest_paths([log], tmp_path / "store").rows == 1


def test_crash_between_ledger_commit_and_rename_is_rolled_forward(
    tmp_path: Path, make_conn_log: MakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_conn_log("conn.log", [conn_line(f"C{i}") for i in range(4)])
    store = tmp_path / "store"

    replace = store_module.os.replace

    def crash(src: object, dst: object) -> None:
        if "/conn/" not in str(dst):
            return replace(src, dst)  # type: ignore[arg-type]
        raise KeyboardInterrupt("power loss")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([log], store)
    monkeypatch.undo()
    assert uids(store) == []  # committed, but not yet visible: never half
    assert list((store / "conn").rglob(".*.tmp"))
    s = ingest_paths([log], store)  # recovery renames; the ledger says the log is done
    assert s.rows == 0
    assert uids(store) == [f"C{i}" for i in range(4)]
    assert not list((store / "conn").rglob(".*.tmp"))


def test_crash_before_ledger_commit_leaves_nothing_and_rerun_ingests_once(
    tmp_path: Path, make_conn_log: MakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_conn_log("conn.log", [conn_line(f"C{i}") for i in range(4)])
    store = tmp_path / "store"
    original_commit = Store.commit_chunk_files

    class FailingCommit:
        """The ledger connection, failing at COMMIT like a full disk would."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self.db.execute(sql, *args)

        def executemany(self, sql: str, rows: object) -> object:
            return self.db.executemany(sql, rows)

        @property
        def in_transaction(self) -> bool:
            return self.db.in_transaction

        def close(self) -> None:
            self.db.close()

    def commit_fails(self: Store, *args: object, **kwargs: object) -> object:
        self.ledger._db = FailingCommit(self.ledger._db)  # type: ignore[assignment]
        return original_commit(self, *args, **kwargs)

    monkeypatch.setattr(Store, "commit_chunk_files", commit_fails)
    with pytest.raises(StoreError, match=r"cannot write to the ledger .* \(disk I/O error\)"):
        ingest_paths([log], store)  # one line for the user, not SQLite's exception
    monkeypatch.undo()
    assert list((store / "conn").rglob(".*.tmp")) == []  # the failed commit cleaned up its files
    assert ingest_paths([log], store).rows == 4
    assert uids(store) == [f"C{i}" for i in range(4)]


def test_recovery_deletes_stray_temporary_files(tmp_path: Path, make_conn_log: MakeLog) -> None:
    store = tmp_path / "store"
    ingest_paths([make_conn_log("conn.log", [conn_line("A")])], store)
    stray = store / "conn" / "date=2026-11-21" / ".deadbeef-000000.parquet.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a file")
    with Store.open(store):
        pass
    assert not stray.exists()


def test_store_refuses_a_foreign_directory(tmp_path: Path, make_conn_log: MakeLog) -> None:
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    from synack.ingest.errors import StoreError

    with pytest.raises(StoreError, match="not a synack store"):
        ingest_paths([make_conn_log("conn.log", [conn_line("A")])], foreign)
    assert sorted(os.listdir(foreign)) == ["notes.txt"]


def test_outcomes_are_stored(make_conn_log: MakeLog, tmp_path: Path) -> None:
    log = make_conn_log(
        "conn.log",
        [
            conn_line("A"),
            conn_line("B", history="Sr", state="REJ"),
            conn_line("C", history="S", state="S0", resp_pkts="0"),
        ],
    )
    ingest_paths([log], tmp_path / "store")
    t = store_table(tmp_path / "store").sort_by("uid")
    assert t.column("outcome").cast("string").to_pylist() == ["open", "rejected", "unanswered"]
    assert pc.count(t.column("server_h")).as_py() == 2


def test_a_finished_live_log_is_compacted_without_changing_its_records(tmp_path: Path) -> None:
    lines = [conn_line(f"C{i:03d}", ts=1795000000.0 + i) for i in range(60)]
    live = tmp_path / "current" / "conn.log"
    live.parent.mkdir()
    live.write_text(conn_header())
    store = tmp_path / "store"
    for start in range(0, 60, 10):  # a watcher's passes: one small file each
        with open(live, "a") as f:
            f.write("".join(lines[start : start + 10]))
        ingest_paths([live], store, chunk_bytes=1024)
    (day,) = (store / "conn").iterdir()
    assert len(list(day.glob("*.parquet"))) > 6
    with open(live, "a") as f:
        f.write("#close\t2026-11-21-11-00-00\n")
    ingest_paths([live], store)
    assert [p.name.split("-")[1][0] for p in day.glob("*.parquet")] == ["c"]  # one merged file
    assert uids(store) == [f"C{i:03d}" for i in range(60)]


def test_a_crash_inside_compaction_is_finished_by_recovery(tmp_path: Path) -> None:
    import subprocess
    import sys

    lines = [conn_line(f"C{i:03d}", ts=1795000000.0 + i) for i in range(40)]
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines) + "#close\tx\n")
    store = tmp_path / "store"
    code = (
        "import sys; from pathlib import Path; from synack.ingest.conn_ingest import ingest_paths; "
        f"ingest_paths([Path({str(log)!r})], Path({str(store)!r}), chunk_bytes=1024)"
    )
    root = Path(__file__).resolve().parents[1]
    crash = root / "tests" / "crash_entry.py"
    proc = subprocess.run([sys.executable, str(crash), "compaction-committed:1", "-c", code], cwd=root,
                          capture_output=True)  # fmt: skip
    assert proc.returncode == -9
    mid_swap = uids(store)
    assert len(mid_swap) == len(set(mid_swap))  # mid-swap: maybe missing for an instant, never twice
    assert ingest_paths([log], store).rows == 0  # recovery finishes the swap
    (day,) = (store / "conn").iterdir()
    assert len(list(day.glob("*.parquet"))) == 1 and not list(day.glob(".*.tmp"))
    assert uids(store) == [f"C{i:03d}" for i in range(40)]


def test_a_log_column_named_like_a_partition_key_is_renamed_and_the_store_reads_as_a_dataset(tmp_path: Path) -> None:
    """A `date` column (a partition key of conn/) becomes `log_date`: pandas reads the whole store as before."""
    import pandas as pd

    fields = [*CONN_HEADER_FIELDS, ("date", "string")]
    lines = [conn_line(f"Cdate{i}", ts=1795000000.0 + i).rstrip("\n") + "\t2026-01-01\n" for i in range(3)]
    log = write_log(tmp_path / "conn.log", conn_header(fields) + "".join(lines) + "#close\t2026-11-21-11-00-00\n")
    store = tmp_path / "store"
    assert ingest_paths([log], store).rows == 3
    records = pd.read_parquet(store / "conn")
    assert len(records) == 3 and records["log_date"].tolist() == ["2026-01-01"] * 3
    assert {str(d) for d in records["date"]} == {"2026-11-18"}


def test_an_ipv6_zone_id_that_is_no_interface_name_is_quarantined(tmp_path: Path) -> None:
    """fe80::2%a<TAB>b would be stored, then written raw into the export-known table Zeek reads."""
    lines = [
        conn_line("Cgood", orig="fe80::1", resp="fe80::2%eth0"),
        conn_line("Cbad", ts=1795000001.0, orig="fe80::1", resp="fe80::2%a\\x09b"),
    ]
    log = write_log(tmp_path / "conn.log", conn_header() + "".join(lines) + "#close\t2026-11-21-11-00-00\n")
    summary = ingest_paths([log], tmp_path / "store")
    assert summary.rows == 1 and summary.quarantined == 1
    records = store_table(tmp_path / "store")
    assert records.column("resp_h").to_pylist() == ["fe80::2%eth0"]


def test_a_truncated_gzip_archive_gives_its_lines_before_the_damage_and_is_not_retried_once_finished(
    tmp_path: Path,
) -> None:
    """Today: 0 rows and 'still being written?' forever."""
    import gzip
    import os
    import time

    text = conn_header() + "".join(conn_line(f"C{i}", ts=1795000000.0 + i) for i in range(20_000))
    data = gzip.compress((text + "#close\t2026-11-21-11-00-00\n").encode())
    archive = tmp_path / "logs" / "conn.10:00:00-11:00:00.log.gz"
    archive.parent.mkdir()
    archive.write_bytes(data[: len(data) * 6 // 10])
    store = tmp_path / "store"
    first = ingest_paths([archive.parent], store)  # maybe still being written: what is there is read
    assert 10_000 < first.rows < 20_000 and first.files[0].message.startswith("gzip stream ends early")
    old = time.time() - 3600
    os.utime(archive, (old, old))  # nobody wrote to it for an hour: it is damaged
    second = ingest_paths([archive.parent], store)
    assert second.rows == 0 and "damaged gzip archive" in second.files[0].message
    assert f"its {first.rows + 8:,} lines before the damage" in second.files[0].message  # 8 header lines
    third = ingest_paths([archive.parent], store)
    assert third.rows == 0 and third.files[0].message == ""  # not tried again
    records = store_table(store)
    assert len(records) == first.rows == len(set(records.column("uid").to_pylist()))


def _quarantine(store: Path) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for f in sorted((store / "quarantine").glob("*.jsonl")) for line in f.open()]


def test_a_json_log_whose_first_line_is_huge_is_read_past_it(tmp_path: Path) -> None:
    """Today: a 1.5 MB first line made the log '0 rows', never read, by ingest and watch."""
    import json

    record = {"ts": 1795000000.0, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 40000, "id.resp_h": "10.1.0.2",
              "id.resp_p": 80, "proto": "tcp", "conn_state": "SF", "history": "ShADadFf", "resp_pkts": 3}  # fmt: skip
    lines = [json.dumps({**record, "uid": "Cbig", "junk": "x" * 1_500_000})]
    lines += [json.dumps({**record, "uid": f"C{i}", "ts": 1795000000.0 + i}) for i in range(1000)]
    log = write_log(tmp_path / "logs" / "conn.json", "\n".join(lines) + "\n")
    store = tmp_path / "store"
    summary = ingest_paths([log], store)
    assert summary.rows == 1000 and summary.quarantined == 1
    (entry,) = _quarantine(store)
    assert entry["line"] == 1 and "1,500," in str(entry["reason"]) and len(str(entry["text"])) < 200  # a reference
    assert ingest_paths([log], store).rows == 0  # once


@pytest.mark.parametrize("compress", [False, True])
def test_lines_longer_than_a_record_are_quarantined_by_reference_and_the_lines_after_them_read(
    tmp_path: Path, compress: bool
) -> None:
    """Today: a gzip of a header, 10 lines, then 1 GiB without a newline took 210 s and 4.4 GB."""
    from synack.ingest.log_source import MAX_LINE_BYTES

    before = "".join(conn_line(f"Cb{i}", ts=1795000000.0 + i) for i in range(10))
    middle = "x" * (2 * MAX_LINE_BYTES) + "\n"  # inside a block: emptied for the parser
    after = "".join(conn_line(f"Ca{i}", ts=1795000100.0 + i) for i in range(5))
    endless = "y" * (20 * MAX_LINE_BYTES)  # no newline, the file's end: longer than a buffer holds at once
    text = conn_header() + before + middle + after + endless
    log = write_log(tmp_path / "logs" / ("conn.10:00:00-11:00:00.log.gz" if compress else "conn.log"), text, compress)
    if not compress:  # a plain file is finished once nobody wrote it for a while
        import os
        import time

        os.utime(log, (time.time() - 3600, time.time() - 3600))
    store = tmp_path / "store"
    summary = ingest_paths([log], store)
    assert summary.rows == 15 and summary.quarantined == 2
    reasons = sorted((int(str(e["line"])), str(e["text"])) for e in _quarantine(store))
    assert [line for line, _ in reasons] == [19, 25] and all(len(text) < 200 for _, text in reasons)
    assert sorted(store_table(store).column("uid").to_pylist()) == sorted([f"Cb{i}" for i in range(10)]
                                                                          + [f"Ca{i}" for i in range(5)])  # fmt: skip
    assert ingest_paths([log], store).rows == 0


def test_a_log_mostly_in_the_future_stops_with_one_line_and_commits_nothing_of_it(tmp_path: Path) -> None:
    """Today: the ingest host's clock 60 days behind quarantined 5,000 good records for good."""
    from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS

    ahead = time.time() + 60 * 86400  # the log's time, as this host's wrong clock sees it
    lines = [conn_line(f"Cf{i}", ts=ahead + i) for i in range(200)]
    log = write_log(tmp_path / "conn.log", conn_header() + "".join(lines) + "#close\t2026-11-21-11-00-00\n")
    store = tmp_path / "store"
    summary = ingest_paths([log], store)
    (result,) = summary.files
    assert result.status == "error" and "clock behind this log" in result.message and summary.rows == 0
    assert not list((store / "quarantine").glob("*.jsonl")) if (store / "quarantine").exists() else True
    # The clock fixed (here: more skew allowed), the same log is read whole: nothing was lost.
    again = ingest_paths([log], store, clock_skew=DEFAULT_CLOCK_SKEW_SECONDS + 61 * 86400)
    assert again.rows == 200 and again.quarantined == 0


def test_a_file_that_runs_out_of_memory_is_set_aside_and_the_next_files_are_read(
    make_conn_log: MakeLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a file exhausting memory under the CLI's limit failed the run the same way every time, and
    the good files after it were never reached."""
    from synack.ingest import conn_ingest

    bad = make_conn_log("logs/conn.a.log", [conn_line("Cbad", ts=1795000000.0)])
    good = make_conn_log("logs/conn.b.log", [conn_line("Cgood", ts=1795000100.0)], opened="2026-11-21-11-00-00")
    real = conn_ingest.parse_and_aggregate

    def parse(source: Any, *args: Any) -> Any:
        if source.path == bad:
            raise MemoryError
        return real(source, *args)

    monkeypatch.setattr(conn_ingest, "parse_and_aggregate", parse)
    summary = ingest_paths([tmp_path / "logs"], tmp_path / "store")
    by_path = {f.path: f for f in summary.files}
    assert by_path[bad].status == "error" and "ran out of memory" in by_path[bad].message
    assert by_path[good].status == "ingested" and summary.rows == 1
    assert any("ran out of memory" in p.read_text() for p in (tmp_path / "store" / "quarantine").glob("file-*.jsonl"))
    again = ingest_paths([tmp_path / "logs"], tmp_path / "store")
    assert {f.path: f.status for f in again.files}[bad] == "unchanged"  # not tried again until it changes


def test_the_longest_line_read_as_a_record_is_a_setting(make_conn_log: MakeLog, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synack.cli import app

    padded = conn_line("Cpad", ts=1795000000.0).replace("(empty)", "x" * 9000)
    log = make_conn_log("logs/conn.log", [conn_line("C1", ts=1795000000.0), padded, conn_line("C2", ts=1795000001.0)])
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(log), "--store", str(tmp_path / "store"), "--max-line-bytes", "8192"])
    assert result.exit_code == 0, result.output
    quarantine = "".join(p.read_text() for p in (tmp_path / "store" / "quarantine").glob("*.jsonl"))
    assert "is longer than 8,192" in quarantine and store_table(tmp_path / "store").num_rows == 2
    refused = runner.invoke(app, ["ingest", str(log), "--store", str(tmp_path / "s2"), "--max-line-bytes", "100"])
    assert refused.exit_code == 2 and "--max-line-bytes" in refused.output


def test_within_tree_follows_no_link_outside_the_directory_given(tmp_path: Path) -> None:
    """zeekctl's logs/current points into its spool directory: followed by default, not with --within-tree."""
    from typer.testing import CliRunner

    from synack.cli import app

    spool = tmp_path / "spool" / "zeek"
    write_log(spool / "conn.log", conn_header() + conn_line("Cspool", ts=1795000000.0))
    logs = tmp_path / "logs"
    write_log(logs / "2026-11-21" / "conn.10:00:00-11:00:00.log", conn_header() + conn_line("Carch", ts=1795000100.0))
    (logs / "current").symlink_to(spool)
    runner = CliRunner()
    inside = runner.invoke(app, ["ingest", str(logs), "--store", str(tmp_path / "a"), "--within-tree"])
    assert inside.exit_code == 0 and "did not follow 1 link" in inside.output and str(logs / "current") in inside.output
    assert store_table(tmp_path / "a").column("uid").to_pylist() == ["Carch"]
    followed = runner.invoke(app, ["ingest", str(logs), "--store", str(tmp_path / "b")])
    assert followed.exit_code == 0 and sorted(store_table(tmp_path / "b").column("uid").to_pylist()) == [
        "Carch", "Cspool"]  # fmt: skip
