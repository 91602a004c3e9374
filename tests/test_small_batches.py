"""Many small logs are committed in batches (ingest.small_batches): the
same store answers as reading them one by one, with far fewer files and
commits, each log still a source of its own.

Before: each one-hour archive of a quiet sensor cost one parse, three
files and one ledger commit (~90 ms): a year of them took 13 minutes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from synack.ingest import small_batches
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.ledger import read_state
from synack.ingest.store_files import locate
from tests.conftest import conn_header, conn_line, store_table
from tests.engine_answers import answers

HOURS = 60


def _hour(h: int, bad: bool = False) -> bytes:
    """One closed hourly archive of a quiet sensor: 4 connections (one line garbled with `bad`)."""
    t0 = 1795000000.0 + h * 3600
    opened = f"2026-11-{18 + h // 24:02d}-{h % 24:02d}-00-00"
    lines = [conn_line(f"H{h}x{i}", ts=t0 + i * 600, resp=f"10.0.{h % 3}.{i + 1}", resp_p=(22, 443)[i % 2])
             for i in range(4)]  # fmt: skip
    if bad:
        lines[2] = lines[2].replace("\t22\t", "\tnot-a-port\t").replace("\t443\t", "\tnot-a-port\t")
    text = conn_header(opened=opened) + "".join(lines) + f"#close\t{opened}\n"
    return gzip.compress(text.encode(), mtime=0)


@pytest.fixture
def hours(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    for h in range(HOURS):
        day = logs / f"2026-11-{18 + h // 24:02d}"
        day.mkdir(parents=True, exist_ok=True)
        (day / f"conn.{h % 24:02d}:00:00-{h % 24 + 1:02d}:00:00.log.gz").write_bytes(_hour(h))
    return logs


def test_a_batch_answers_as_the_logs_read_one_by_one_with_far_fewer_files(
    hours: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batched = ingest_paths([hours], tmp_path / "batched")
    assert batched.rows == 4 * HOURS and {f.status for f in batched.files} == {"ingested"}
    with monkeypatch.context() as alone:
        alone.setattr(small_batches, "SMALL_FILE_BYTES", 0)  # no log joins a batch
        ingest_paths([hours], tmp_path / "alone")
    assert answers(tmp_path / "batched", "2026-11-18", "2026-11-21") == answers(tmp_path / "alone", "2026-11-18",
                                                                                "2026-11-21")  # fmt: skip
    count = lambda store: len(read_state(locate(store)).record_files)  # noqa: E731
    assert count(tmp_path / "batched") <= 3 < 24 <= count(tmp_path / "alone")  # (settled days are merged)
    state = read_state(locate(tmp_path / "batched"))
    assert state.sources.sources == HOURS  # each log is a source of its own
    # Each log's offset is committed: read again, or as a rotated copy under another name, it adds nothing.
    assert ingest_paths([hours], tmp_path / "batched").rows == 0
    copy = tmp_path / "copy" / "conn.renamed.log.gz"
    copy.parent.mkdir()
    copy.write_bytes(next(hours.rglob("*.gz")).read_bytes())
    assert ingest_paths([copy.parent], tmp_path / "batched").rows == 0
    assert store_table(tmp_path / "batched").num_rows == 4 * HOURS


def test_a_batch_with_a_bad_line_is_read_log_by_log_so_the_line_keeps_its_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for h in range(5):
        (logs / f"conn.{h}.log.gz").write_bytes(_hour(h, bad=h == 3))
    summary = ingest_paths([logs], tmp_path / "store")
    assert summary.rows == 19 and summary.quarantined == 1
    entries = [line for p in (tmp_path / "store" / "quarantine").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(entries) == 1 and '"file": "' + str(logs / "conn.3.log.gz") in entries[0] and '"line": 11' in entries[0]


def test_a_log_sharing_a_block_with_the_batch_is_read_after_it(tmp_path: Path) -> None:
    """An archive and a small concatenation holding it, in one run: the batch is committed before the
    concatenation is read, so its copy of the archive's block is skipped."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "conn.a.log.gz").write_bytes(_hour(0))
    (logs / "conn.b.log.gz").write_bytes(_hour(1))
    (logs / "conn.c.log").write_bytes(gzip.decompress(_hour(2)) + gzip.decompress(_hour(0)))
    import os

    os.utime(logs / "conn.c.log", (1.7e9, 1.7e9))  # finished long ago
    summary = ingest_paths([logs], tmp_path / "store")
    assert summary.rows == 12 and store_table(tmp_path / "store").num_rows == 12
