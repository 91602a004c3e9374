"""Retention (ingest.retention, `synack prune`): old days' records deleted,
their aggregates kept, every whole-day answer unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.retention import prune_records
from synack.ingest.store import Store
from synack.ingest.store_check import check_store
from synack.samples.generate import OUT
from tests import shorthands as inventory
from tests.conftest import run_synack


def _answers(store: Path) -> list[pd.DataFrame]:
    inv = inventory.Inventory(store, nets="all", as_of="newest")
    return [inv.servers(), inv.clients(), inv.client_pairs(), inv.closed(), inv.new_servers("2026-11-19"),
            inv.new_clients("2026-11-19"), inv.gone_servers(idle_days=1),
            inv.servers("2026-11-19", "2026-11-20")]  # fmt: skip


def _same(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> None:
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("retention") / "store"
    ingest_paths([OUT], store)
    return store


def test_pruned_days_lose_their_records_and_keep_every_whole_day_answer(sample_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    before = _answers(store)
    with Store.open(store) as opened:
        done = prune_records(opened, "2026-11-20")
        assert done.days == ["2026-11-18", "2026-11-19"] and done.records > 0 and done.files > 0
        assert opened.ledger.record_days() == ["2026-11-20", "2026-11-21"]
        assert opened.ledger.pruned_days() == ["2026-11-18", "2026-11-19"]
        assert prune_records(opened, "2026-11-20").days == []  # again: nothing left to do
        assert check_store(opened).ok  # the pruned days' counts are not "miscounted"
    assert not list((store / "conn" / "date=2026-11-18").glob("*.parquet"))
    assert inventory.Inventory(store).status()["pruned_days"] == 2
    _same(_answers(store), before)
    # rebuild leaves the pruned days' aggregates (there are no records to rebuild them from)
    with Store.open(store) as opened:
        assert opened.rebuild_aggregates() == ["2026-11-20", "2026-11-21"]
    _same(_answers(store), before)


def test_a_range_cutting_a_pruned_day_is_answered_to_the_whole_day_and_says_so(sample_store: Path,
                                                                               tmp_path: Path) -> None:  # fmt: skip
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    with Store.open(store) as opened:
        prune_records(opened, "2026-11-20")
    inv = inventory.Inventory(store, nets="all")
    cut = inv.servers("2026-11-19T12:00", "2026-11-20")
    whole = inv.servers("2026-11-19", "2026-11-20")
    pd.testing.assert_frame_equal(cut.drop(columns=["first_in_range", "new"]),
                                  whole.drop(columns=["first_in_range", "new"]))  # fmt: skip
    assert cut.attrs["whole_days"] == ["2026-11-19"] and "whole_days" not in whole.attrs
    assert "whole_days" not in inv.servers("2026-11-20T12:00").attrs  # a day with records is cut as before


def test_prune_command_prunes_by_age_and_refuses_a_bad_one(sample_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    servers = run_synack("servers", "--nets", "all", "--store", str(store), "-f", "csv")
    bad = run_synack("prune", "--records-older-than", "soon", "--store", str(store))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "30d" in bad.stderr
    run = run_synack("prune", "--records-older-than", "1d", "--store", str(store))
    assert run.returncode == 0, run.stderr
    assert "pruned the records of 4 days" in run.stdout and "aggregates are kept" in run.stdout
    assert run_synack("servers", "--nets", "all", "--store", str(store), "-f", "csv").stdout == servers.stdout
    cut = run_synack("servers", "--nets", "all", "--since", "2026-11-19T12:00", "--store", str(store), "-f", "csv")
    assert cut.returncode == 0 and "2026-11-19 were pruned" in cut.stderr
    assert run_synack("check", "--store", str(store)).returncode == 0


def test_watch_prunes_after_a_pass_that_committed_records(sample_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = run_synack("watch", str(OUT), "--store", str(store), "--once", "--prune-records-older-than", "1d")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    (pruned,) = [e for e in events if e["event"] == "pruned"]
    assert pruned["days"] == ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"] and pruned["records"] > 0
    assert not list((store / "conn").rglob("*.parquet"))
    _same(_answers(store), _answers(sample_store))
    again = run_synack("watch", str(OUT), "--store", str(store), "--once", "--prune-records-older-than", "1d")
    assert again.returncode == 0 and "pruned" not in again.stderr  # nothing new, nothing pruned
    bad = run_synack("watch", str(OUT), "--store", str(store), "--once", "--prune-records-older-than", "1y")
    assert bad.returncode == 2 and "30d" in bad.stderr
