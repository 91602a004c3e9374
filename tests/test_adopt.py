"""`synack check --adopt`: a ledger restored from a backup, lost, or copied
cannot shrink the store; it is rebuilt from the files the store holds.

Before: a live log ingested in 3 passes, the ledger backed up, 3 more
passes, the log rotated (its chunk files compacted into one), the backup
restored: queries answered the old 3,000 records, `check --repair` moved
the compacted file holding all 6,000 records to damaged/, and the store
ended with 3,000 of 6,000 records.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import StoreError
from synack.ingest.provenance import KEY, Provenance, from_schema
from synack.ingest.store_adopt import adopt_store
from synack.ingest.store_files import retired_name
from synack.inventory import Inventory
from tests.conftest import conn_header, conn_line

runner = CliRunner()
PASS_RECORDS = 1000
PASSES = 6


def _pass_lines(n: int) -> str:
    """The records of pass `n`: PASS_RECORDS connections to 40 servers, over two days."""
    lines = []
    for i in range(PASS_RECORDS):
        k = n * PASS_RECORDS + i
        client, server = f"10.1.{k % 7}.{k % 250 + 1}", f"10.0.0.{k % 40 + 1}"
        lines.append(conn_line(f"C{k:07d}", ts=1795000000.0 + k * 20.0, orig=client, orig_p=30000 + k % 20000,
                               resp=server, resp_p=(22, 80, 443)[k % 3]))  # fmt: skip
    return "".join(lines)


def _answers(store: Path) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    inv = Inventory(store, nets="all")
    servers = inv.servers().reset_index(drop=True)
    clients = inv.clients().reset_index(drop=True)
    servers.attrs, clients.attrs = {}, {}
    return servers, clients, int(inv.status()["records"])


@pytest.fixture
def rotated(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A store fed a live log in PASSES passes (the ledger backed up after
    the third), then the log rotated into a gzip archive, whose read
    finishes the source and compacts its chunk files. Returns the store,
    the log folder and the backup."""
    logs, store, backup = tmp_path / "logs", tmp_path / "store", tmp_path / "backup.sqlite"
    live = logs / "conn.log"
    logs.mkdir()
    live.write_text(conn_header())
    for n in range(PASSES):
        with live.open("a") as f:
            f.write(_pass_lines(n))
        assert ingest_paths([logs], store).rows == PASS_RECORDS
        if n == 2:
            shutil.copy(store / "ledger.sqlite", backup)
    archive = logs / "2026-11-21" / "conn.10:00:00-11:00:00.log.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(live.read_bytes() + b"#close\t2026-11-21-11-00-00\n"))
    live.unlink()
    assert ingest_paths([logs], store).rows == 0
    assert list(store.glob("conn/date=*/*-c0000*.parquet")), "the finished source's chunk files are compacted"
    return store, logs, backup


def test_a_restored_backup_is_adopted_with_every_record_and_the_same_answers(
    rotated: tuple[Path, Path, Path],
) -> None:
    store, logs, backup = rotated
    before = _answers(store)
    assert before[2] == PASSES * PASS_RECORDS
    shutil.copy(backup, store / "ledger.sqlite")
    refused = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all"])
    assert refused.exit_code == 2 and "behind the store" in refused.output and "check --adopt" in refused.output

    result = runner.invoke(app, ["check", "--adopt", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "ledger adopted" in result.output and "kept the old ledger" in result.output
    after = _answers(store)
    assert after[2] == PASSES * PASS_RECORDS
    pd.testing.assert_frame_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])
    assert not (store / "damaged").exists()
    assert list(store.glob("ledger.sqlite.before-adopt-*")), "the restored ledger is kept beside the new one"
    # The sources' offsets came back from the files: the logs read again add nothing; new lines are read once.
    assert ingest_paths([logs], store).rows == 0
    live = logs / "conn.log"
    live.write_text(conn_header(opened="2026-11-21-11-00-00") + _pass_lines(PASSES))
    assert ingest_paths([logs], store).rows == PASS_RECORDS
    assert _answers(store)[2] == (PASSES + 1) * PASS_RECORDS
    assert runner.invoke(app, ["check", "--store", str(store)]).exit_code == 0


def test_a_lost_ledger_is_rebuilt_from_the_files_alone(rotated: tuple[Path, Path, Path]) -> None:
    store, logs, _ = rotated
    before = _answers(store)
    (store / "ledger.sqlite").unlink()
    report = adopt_store(store)
    assert any("from the store's files alone" in line for line in report.lines)
    assert report.records == PASSES * PASS_RECORDS and report.lost_records == 0
    after = _answers(store)
    pd.testing.assert_frame_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])
    assert ingest_paths([logs], store).rows == 0


def test_a_retired_file_whose_rows_no_file_holds_is_put_back(rotated: tuple[Path, Path, Path]) -> None:
    """A crash between a compaction's commit and its publishing: the merged
    file is not in place, the chunk files it replaced are retired. Adoption
    puts them back rather than losing their records."""
    store, logs, backup = rotated
    before = _answers(store)
    for merged in store.glob("conn/date=*/*-c0000*.parquet"):
        merged.unlink()
    shutil.copy(backup, store / "ledger.sqlite")
    report = adopt_store(store)
    assert any(line.startswith("put back conn/") for line in report.lines)
    after = _answers(store)
    assert after[2] == PASSES * PASS_RECORDS
    pd.testing.assert_frame_equal(after[0], before[0])
    assert ingest_paths([logs], store).rows == 0


def test_a_copy_of_a_record_file_is_moved_aside_not_counted_twice(rotated: tuple[Path, Path, Path]) -> None:
    store, _, backup = rotated
    merged = sorted(store.glob("conn/date=*/*-c0000*.parquet"))[0]
    shutil.copy(merged, merged.with_name("copy-000001.parquet"))
    shutil.copy(backup, store / "ledger.sqlite")
    report = adopt_store(store)
    assert any("a copy of rows" in line for line in report.lines)
    assert _answers(store)[2] == PASSES * PASS_RECORDS
    assert (store / "damaged" / merged.relative_to(store).with_name("copy-000001.parquet")).exists()


def test_adopting_a_current_ledger_changes_no_answer_and_can_run_twice(rotated: tuple[Path, Path, Path]) -> None:
    store, logs, _ = rotated
    before = _answers(store)
    for _ in range(2):
        report = adopt_store(store)
        assert report.lost_records == 0 and report.records == PASSES * PASS_RECORDS
        after = _answers(store)
        pd.testing.assert_frame_equal(after[0], before[0])
        pd.testing.assert_frame_equal(after[1], before[1])
    assert ingest_paths([logs], store).rows == 0


def test_a_foreign_ledger_is_refused(rotated: tuple[Path, Path, Path], tmp_path: Path) -> None:
    store, _, _ = rotated
    other = tmp_path / "other"
    logs = tmp_path / "other-logs"
    logs.mkdir()
    (logs / "conn.log").write_text(conn_header() + _pass_lines(0))
    ingest_paths([logs], other)
    marker = (store / "synack-store.json").read_bytes()
    with pytest.raises(StoreError, match="belongs to another store"):
        adopt_store(store, ledger=other / "ledger.sqlite")
    result = runner.invoke(app, ["check", "--adopt", "--store", str(store), "--ledger", str(other / "ledger.sqlite")])
    assert result.exit_code == 2 and "belongs to another store" in result.output
    assert (store / "synack-store.json").read_bytes() == marker


def test_every_store_file_carries_the_chunks_it_holds(rotated: tuple[Path, Path, Path]) -> None:
    """The provenance the adoption reads: a compacted file names every chunk it merged, with its span."""
    import pyarrow.parquet as pq

    store, _, _ = rotated
    spans = {}
    for path in store.glob("conn/date=*/*.parquet"):
        provenance = from_schema(pq.read_schema(path))
        assert provenance is not None and KEY in pq.read_schema(path).metadata
        for source, facts in provenance.sources.items():
            assert facts.kind == "zeek-ascii" and facts.header.startswith(b"#separator")
            spans.update({(source, c.chunk): c for c in facts.chunks})
    assert sorted(c for _, c in spans) == list(range(PASSES))
    ordered = [spans[k] for k in sorted(spans)]
    assert all(a.byte_end == b.byte_start and a.line_end == b.line_start for a, b in zip(ordered, ordered[1:]))
    assert sum(c.rows for c in ordered) == PASSES * PASS_RECORDS
    retired = [p for p in store.glob("conn/date=*/.*.retired")]
    assert retired and all(retired_name(p.with_name(p.name[1:-8])) == p for p in retired)
    with pytest.raises(ValueError):
        Provenance.decode(b'{"v": 1, "owner": []}')
