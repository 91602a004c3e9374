"""`synack quarantine`: the lines set aside, counted, and replayed through today's rules exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.quarantine_replay import replay
from synack.ingest.snapshot import locate, take_snapshot
from synack.ingest.store import Store
from synack.inventory import Inventory
from tests.conftest import conn_header, conn_line, write_log

runner = CliRunner()


def _future_log(tmp_path: Path) -> tuple[Path, Path]:
    """A conn.log of 20 good lines, 5 a few days ahead of this clock (a sensor's clock ahead, or this
    host's behind) and one garbled line, ingested with the default one-day skew."""
    now = time.time()
    lines = [conn_line(f"C{i}", ts=now - 3600 + i) for i in range(20)]
    lines += [conn_line(f"F{i}", ts=now + 3 * 86400 + i, resp="10.0.0.99", resp_p=8443) for i in range(5)]
    lines.append("garbage\tline\n")
    log = write_log(tmp_path / "logs" / "conn.log", conn_header() + "".join(lines))
    store = tmp_path / "store"
    summary = ingest_paths([log.parent], store)
    assert (summary.rows, summary.quarantined) == (20, 6)
    return log, store


def test_quarantine_lists_lines_by_file_and_reason(tmp_path: Path) -> None:
    _, store = _future_log(tmp_path)
    result = runner.invoke(app, ["quarantine", "--store", str(store), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["reason"]: r["lines"] for r in json.loads(result.stdout)}
    assert rows == {"ts: in the future (more than the allowed clock skew)": 5, "expected 21 fields, got 2": 1}


def test_replay_ingests_what_reads_now_exactly_once(tmp_path: Path) -> None:
    log, store = _future_log(tmp_path)
    with Store.open(locate(store)) as opened:
        unchanged = replay(opened, reasons=["in the future"])  # the same clock: still in the future
    assert (unchanged.replayed, unchanged.still_bad, unchanged.files) == (0, 5, 0)
    result = runner.invoke(app, ["quarantine", "replay", "--store", str(store), "--reason", "in the FUTURE",
                                 "--clock-skew", str(10 * 86400)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "replayed 5 lines of 1 quarantine file: 5 records ingested; 0 still quarantined" in result.stdout
    servers = Inventory(store, nets="all").servers()
    assert servers.set_index("server_p").loc[8443, "connections"] == 5
    # Exactly once: a second replay, and the log ingested again, add nothing.
    again = runner.invoke(app, ["quarantine", "replay", "--store", str(store), "--clock-skew", str(10 * 86400)])
    assert "replayed 0 lines" in again.stdout and "1 still quarantined" in again.stdout  # the garbled line
    assert ingest_paths([log.parent], store).rows == 0
    snap = take_snapshot(locate(store))
    assert sum(rows for _, _, rows in snap.quarantine_counts()) == 1
    assert snap.sources_summary()["quarantined_lines"] == 1
    assert Inventory(store, nets="all").servers().set_index("server_p").loc[8443, "connections"] == 5
    assert runner.invoke(app, ["check", "--store", str(store)]).exit_code == 0


def test_a_replayed_line_still_bad_keeps_its_place_with_todays_reason(tmp_path: Path) -> None:
    """A JSON log: one line with an address that is none and one in the future; replayed with a wide skew,
    the future one is ingested and the other stays, its reason unchanged, its line number kept."""
    now = time.time()
    good = {"ts": now - 60, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 40000, "id.resp_h": "10.0.0.2",
            "id.resp_p": 22, "proto": "tcp", "conn_state": "SF", "history": "ShADadFf", "orig_pkts": 3,
            "resp_pkts": 3}  # fmt: skip
    future = {**good, "uid": "C2", "ts": now + 5 * 86400, "id.resp_p": 2222}
    bad = {**good, "uid": "C3", "id.resp_h": "10.0.0.256"}
    log = tmp_path / "logs" / "conn.json"
    log.parent.mkdir()
    log.write_text("\n".join(json.dumps(r) for r in (good, bad, future)) + "\n")
    store = tmp_path / "store"
    assert ingest_paths([log], store).quarantined == 2
    with Store.open(locate(store)) as opened:
        done = replay(opened, clock_skew=10 * 86400)
    assert (done.rows, done.replayed, done.still_bad) == (1, 1, 1)
    counts = take_snapshot(locate(store)).quarantine_counts()
    assert [(reason, lines) for _, reason, lines in counts] == [("id.resp_h: invalid address", 1)]
    entry = json.loads(next((store / "quarantine").glob("*-r*.jsonl")).read_text())
    assert entry["line"] == 2 and "10.0.0.256" in entry["text"]


@pytest.mark.parametrize("reason", ["line of", "nothing matches this"])
def test_lines_kept_by_reference_or_not_chosen_are_left_alone(tmp_path: Path, reason: str) -> None:
    _, store = _future_log(tmp_path)
    before = sorted(p.name for p in (store / "quarantine").iterdir())
    with Store.open(locate(store)) as opened:
        done = replay(opened, reasons=[reason], clock_skew=10 * 86400)
    assert (done.replayed, done.files) == (0, 0)
    assert sorted(p.name for p in (store / "quarantine").iterdir()) == before
