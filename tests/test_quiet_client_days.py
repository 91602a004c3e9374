"""A few hosts' client questions skip the days the years' client sightings rule out.

Before: `synack host 10.1.0.5` on a year of 350,000 records a day read
the client rows of all 1,328 day partials (narrowed, each file still read
and checksummed) to find that the host is never a client: 6.6 s. The
years' client sightings say on which days a client can have rows
(dailies.quiet_client_days): 1.7 s, the same answer.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from synack.ingest import sightings
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.rollups import SETTLE_DAYS
from synack.ingest.snapshot import Rollup, Snapshot
from synack.inventory import Inventory
from synack.inventory.dailies import CLIENTS, quiet_client_days, read_catalog
from synack.inventory.query_rows import in_range_of, resolve_nets
from tests.conftest import conn_header, conn_line, without_rollups
from tests.test_sightings import DAY, YEAR_END, _random_log


@pytest.fixture(autouse=True)
def no_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sightings, "LAG_DAYS", SETTLE_DAYS - 1)


def _store(tmp_path: Path, seed: int) -> Path:
    """Random connections over a year's end (2025's and 2026's sightings),
    and client 10.0.9.9 on two days only: 2025-12-23 and 2026-01-02."""
    rng = random.Random(seed)
    logs = [_random_log(tmp_path / "logs" / f"conn.{n}.log", rng, 12, 300, YEAR_END + n * 3 * DAY) for n in range(2)]
    once = tmp_path / "logs" / "conn.once.log"
    once.write_text(conn_header() + "".join(
        conn_line(f"Conce{i}", ts=YEAR_END + d * DAY + 3600, orig="10.0.9.9", resp="10.1.0.2", resp_p=443)
        for i, d in enumerate((3, 13))
    ))  # fmt: skip
    store = tmp_path / "store"
    ingest_paths([*logs, once], store)
    return store


def _read_client_days(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The days whose client partials are read from now on (appended to the list returned)."""
    days: list[str] = []
    real = Snapshot.read_partial

    def read(self: Snapshot, kind: str, partial: object, **options: object) -> object:
        if kind == CLIENTS:
            days.append(partial.day)  # type: ignore[attr-defined]
        return real(self, kind, partial, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(Snapshot, "read_partial", read)
    return days


def _answers(store: Path, host: str) -> list[pd.DataFrame]:
    inv = Inventory(store, nets=host, as_of="newest")
    view = Inventory(store, as_of="newest").host(host)
    return [inv.client_pairs(), inv.clients(), inv.client_pairs(since="2025-12-22", until="2026-01-03"),
            view.tables["connects_to"]]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_a_server_that_is_never_a_client_reads_no_day_its_year_holds(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path, seed)
    plain = without_rollups(store, tmp_path / "plain")  # no sightings: every day read
    expected = _answers(plain, "10.1.0.1")
    catalog = read_catalog(store)
    held = {day for year in catalog.sightings.values() for day in year.days}
    assert len(held) > 10
    days = _read_client_days(monkeypatch)
    years: list[tuple[str, str, object]] = []
    real = Snapshot.read_rollup

    def read_rollup(self: Snapshot, kind: str, rollup: Rollup, **options: object) -> object:
        if rollup.is_sightings:
            years.append((kind, rollup.month, options.get("columns")))
        return real(self, kind, rollup, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(Snapshot, "read_rollup", read_rollup)
    inv = Inventory(store, nets="10.1.0.1", as_of="newest")
    pd.testing.assert_frame_equal(inv.clients(), expected[1])
    # Its years' client rows and their servers' client lists hold nothing of it: only their sightings' spans are read.
    assert {y for _, y, _ in years} == {"2025", "2026"}
    assert all(kind == CLIENTS and columns == ["client_v4", "first_seen", "last_seen"] for kind, _, columns in years)
    got = _answers(store, "10.1.0.1")
    for a, b in zip(got, expected):
        pd.testing.assert_frame_equal(a, b)
    assert all(a.empty for a in got)
    assert days and not set(days) & held  # only the days after the sightings were read


@pytest.mark.parametrize("seed", [1, 2])
def test_a_client_s_question_reads_the_days_between_its_first_and_last_sighting(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path, seed)
    plain = without_rollups(store, tmp_path / "plain")
    for host in ("10.0.0.1", "10.0.9.9"):
        expected = _answers(plain, host)
        days = _read_client_days(monkeypatch)
        got = _answers(store, host)
        for a, b in zip(got, expected):
            pd.testing.assert_frame_equal(a, b)
        assert not got[0].empty
        pairs = got[0]
        first, last = pairs["first_seen"].min().date().isoformat(), pairs["last_seen"].max().date().isoformat()
        catalog = read_catalog(store)
        held = {day for year in catalog.sightings.values() for day in year.days}
        assert not {d for d in days if d in held and (d < first or d > last)}  # none outside its span
        if host == "10.0.9.9":  # a client on two days only, one in each year: each year's span is its day
            assert (first, last) == ("2025-12-23", "2026-01-02")
            quiet = quiet_client_days(catalog, in_range_of(resolve_nets(host), "client_v4"))
            assert quiet == held - {first, last} and len(quiet) >= 10
            assert not set(days) & quiet


def test_a_day_changed_since_its_year_s_sightings_is_read(tmp_path: Path) -> None:
    """A day whose generation moved on (a backfill the sightings have not
    taken in yet) is not ruled out by them: its rows may be new."""
    store = _store(tmp_path, 3)
    narrow = in_range_of(resolve_nets("10.1.0.1"), "client_v4")
    quiet = quiet_client_days(read_catalog(store), narrow)
    assert "2025-12-21" in quiet
    db = sqlite3.connect(store / "ledger.sqlite")
    (days,) = db.execute("SELECT days FROM rollups WHERE month = '2025'").fetchone()
    changed = json.loads(days)
    changed["2025-12-21"] -= 1  # the sightings took the day in at an older generation
    db.execute("UPDATE rollups SET days = ? WHERE month = '2025'", (json.dumps(changed),))
    db.commit()
    db.close()
    quiet = quiet_client_days(read_catalog(store), narrow)
    assert "2025-12-21" not in quiet and "2025-12-22" in quiet
