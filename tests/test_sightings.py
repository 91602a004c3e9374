"""The years' first and last sightings (ingest.sightings): kept by every
ingest, answering "new" and "gone" like a plain merge of the days, never
reading the history's client pairs, and moved earlier by a backfill."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synack.ingest import banded_merge, rollups, sightings
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import StoreError
from synack.ingest.rollups import SETTLE_DAYS
from synack.ingest.store import Store
from synack.ingest.store_check import check_store
from synack.inventory import client_ports, server_ports
from synack.inventory.daily_report import build_report
from synack.samples.generate import OUT
from tests import shorthands as inventory
from tests.conftest import conn_header, conn_line, without_rollups

DAY = 86400.0
START = 1793491200.0  # 2026-11-01 00:00 UTC
YEAR_END = 1766188800.0  # 2025-12-20 00:00 UTC


@pytest.fixture(autouse=True)
def no_lag(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settled days join their year's sightings as they join the month's
    roll-up (the samples span four days), unless a test keeps the lag."""
    if "keeps_lag" not in request.keywords:
        monkeypatch.setattr(sightings, "LAG_DAYS", SETTLE_DAYS - 1)


def _sightings(store: Path) -> dict[str, dict[str, int]]:
    """The ledger's years' sightings: year -> the days (and generations) they cover."""
    db = sqlite3.connect(store / "ledger.sqlite")
    rows = db.execute("SELECT month, days FROM rollups WHERE length(month) = 4").fetchall()
    db.close()
    return {year: json.loads(days) for year, days in rows}


def _rollups(store: Path) -> dict[str, dict[str, int]]:
    """The ledger's month roll-ups: month -> the days (and generations) they cover."""
    db = sqlite3.connect(store / "ledger.sqlite")
    rows = db.execute("SELECT month, days FROM rollups WHERE length(month) = 7").fetchall()
    db.close()
    return {month: json.loads(days) for month, days in rows}


def _history_answers(store: Path, since: str) -> list[pd.DataFrame]:
    inv = inventory.Inventory(store, nets="all", as_of="newest")
    return [
        server_ports.server_sightings(store, nets="all"),
        client_ports.client_sightings(store, nets="all"),
        inv.new_servers(since),
        inv.new_clients(since),
        inv.gone_servers(idle_days=1),
        pd.DataFrame({"host": inv.hosts_serving()}),
        inv.servers(since),
        inv.clients(since),
        inv.clients(),  # a whole year: its servers counted from the year's server rows
        inventory.Inventory(store, nets="all", strict=True).clients(),
    ]


def _same(a: list[pd.DataFrame], b: list[pd.DataFrame]) -> None:
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True))


def test_sample_store_keeps_its_years_sightings_and_they_answer_like_a_plain_merge(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    # The samples run 2026-11-18 .. 11-21: the settled days are in 2026's sightings.
    (year,) = _sightings(store).items()
    assert year[0] == "2026" and sorted(year[1]) == ["2026-11-18", "2026-11-19"]
    assert list((store / "sightings" / "servers" / "year=2026").glob("*.parquet"))
    assert inventory.Inventory(store).status()["sightings_years"] == ["2026"]
    plain = without_rollups(store, tmp_path / "plain")
    _same(_history_answers(store, "2026-11-20"), _history_answers(plain, "2026-11-20"))
    _same(_history_answers(store, "2026-11-19"), _history_answers(plain, "2026-11-19"))


def test_history_questions_read_the_sightings_not_the_days_or_their_client_pairs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    expected = _history_answers(store, "2026-11-20")
    whole = inventory.servers(store, nets="all")
    # The covered days' partials and the month's roll-up made unreadable:
    # every question about the history still answers (from the sightings) ...
    for top in ("aggregates", "rollups"):
        for path in (store / top).rglob("*.parquet"):
            if "2026-11-2" not in str(path):
                path.write_bytes(b"not read")
    _same(_history_answers(store, "2026-11-20")[:6], expected[:6])
    # the servers of the whole history too (their clients included)
    pd.testing.assert_frame_equal(inventory.servers(store, nets="all"), whole)
    # ... while a question that needs the covered days' client pairs reads them (and stops with one line).
    with pytest.raises(StoreError, match="damaged"):
        inventory.client_pairs(store, nets="all")


def _random_log(path: Path, rng: random.Random, days: int, rows: int, start: float = START) -> Path:
    """A conn.log of `rows` random connections over `days` days from `start`."""
    histories = [("SF", "ShADadFf"), ("S0", "S"), ("REJ", "Sr"), ("SF", "SADdaF"), ("OTH", "DdA")]
    lines = []
    for i in range(rows):
        state, history = rng.choice(histories)
        client = f"10.0.{rng.randrange(3)}.{rng.randrange(9)}"
        client = client if rng.random() < 0.9 else f"2001:db8::c{rng.randrange(3)}"
        server = rng.choice(["10.1.0.1", "10.1.0.2", "192.0.2.7"] if ":" not in client else ["2001:db8::5", "fd00::6"])
        lines.append(conn_line(
            f"C{path.stem}{i}", ts=start + rng.random() * days * DAY, orig=client, resp=server,
            resp_p=rng.choice([22, 80, 443, 8443]), proto=rng.choice(["tcp", "tcp", "udp"]), state=state,
            history=history,
        ))  # fmt: skip
    lines.sort(key=lambda line: float(line.split("\t", 1)[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(conn_header() + "".join(lines) + "#close\t2026-12-31-00-00-00\n")
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_stores_answer_from_sightings_like_a_plain_merge(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # Two logs (two sources), across a year's end: 2025's and 2026's sightings.
    logs = [_random_log(tmp_path / "logs" / f"conn.{n}.log", rng, 12, 300, YEAR_END + n * 3 * DAY)
            for n in range(2)]  # fmt: skip
    store = tmp_path / "store"
    ingest_paths(logs, store)
    assert set(_sightings(store)) == {"2025", "2026"}
    plain = without_rollups(store, tmp_path / "plain")
    for since in ("2025-12-26", "2026-01-02", "2026-01-05"):
        _same(_history_answers(store, since), _history_answers(plain, since))


def test_a_backfill_moves_first_sightings_earlier_and_the_report_changes(
    tmp_path: Path, make_conn_log: Callable[..., Path]
) -> None:
    days = [make_conn_log(f"day{d}.log", [conn_line(f"Cd{d}", ts=START + d * DAY + 60, resp_p=80)]) for d in range(8)]
    late = make_conn_log("late.log", [conn_line("Cnew", ts=START + 6 * DAY + 60, resp_p=8443)])
    store = tmp_path / "store"
    ingest_paths([*days, late], store)
    covered = _sightings(store)["2026"]
    assert "2026-11-02" in covered  # day 1 is settled and in the year's sightings
    new_on_day_6 = inventory.new_servers(store, "2026-11-07", "2026-11-08", nets="all")
    assert new_on_day_6["server_p"].tolist() == [8443]
    report = build_report(store, "2026-11-07", nets="all")
    assert report.tables["new_servers"]["server_p"].tolist() == [8443]
    # A backfill of an older log: port 8443 was served on day 1 already.
    backfill = make_conn_log("backfill.log", [conn_line("Cold", ts=START + 1 * DAY + 60, resp_p=8443)])
    ingest_paths([backfill], store)
    assert _sightings(store)["2026"]["2026-11-02"] == covered["2026-11-02"] + 1  # started afresh
    assert inventory.new_servers(store, "2026-11-07", "2026-11-08", nets="all").empty
    assert build_report(store, "2026-11-07", nets="all").tables["new_servers"].empty
    moved = inventory.new_servers(store, "2026-11-02", "2026-11-03", nets="all")
    assert moved["server_p"].tolist() == [8443]
    plain = without_rollups(store, tmp_path / "plain")
    _same(_history_answers(store, "2026-11-02"), _history_answers(plain, "2026-11-02"))


def test_a_damaged_sightings_file_is_set_aside_and_redone(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    expected = _history_answers(store, "2026-11-20")
    (damaged,) = (store / "sightings" / "clients").rglob("*.parquet")
    damaged.write_bytes(b"damaged")
    with pytest.raises(StoreError, match="damaged"):
        inventory.new_clients(store, "2026-11-20", nets="all")
    with Store.open(store) as opened:
        report = check_store(opened, repair=True)
        assert any(str(damaged.relative_to(store)) in line for line in report.problems)
        assert not check_store(opened).problems
    assert (store / "damaged" / damaged.relative_to(store)).exists()
    _same(_history_answers(store, "2026-11-20"), expected)


@pytest.mark.keeps_lag
def test_days_join_the_sightings_a_lag_after_the_newest_so_recent_ranges_still_use_them(
    tmp_path: Path, make_conn_log: Callable[..., Path]
) -> None:
    days = [make_conn_log(f"day{d}.log", [conn_line(f"Cd{d}", ts=START + d * DAY + 60, resp_p=80 + d % 3)])
            for d in range(20)]  # fmt: skip
    store = tmp_path / "store"
    ingest_paths(days, store)
    covered = sorted(_sightings(store)["2026"])
    assert sightings.sightings_before("2026-11-20") == "2026-11-05"  # the newest day less LAG_DAYS
    assert covered == [f"2026-11-{d:02d}" for d in range(1, 5)]
    # A gone-ports question at each of the report's comparison days reads the sightings, not the days they cover.
    expected = [inventory.gone_servers(store, f"2026-11-{d}", idle_days=1, nets="all") for d in range(13, 21)]
    for path in (store / "aggregates").rglob("*.parquet"):
        if any(f"date={day}" in str(path) for day in covered):
            path.write_bytes(b"not read")
    for path in (store / "rollups").rglob("*.parquet"):
        path.write_bytes(b"not read")
    for d, answer in zip(range(13, 21), expected, strict=True):
        pd.testing.assert_frame_equal(inventory.gone_servers(store, f"2026-11-{d}", idle_days=1, nets="all"), answer)


@pytest.mark.parametrize(("seed", "run_bytes"), [(4, 1), (5, 1 << 30)])
def test_a_year_s_sightings_merged_in_bands_are_the_whole_merge(
    tmp_path: Path, seed: int, run_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sightings merged a band at a time (servers by state and server_v4,
    clients by state, proto, port and client: banded_merge), the other
    inputs merged into one run each or all into one, hold the rows a whole
    merge holds, in the same order, and answer alike. Before: a year
    of 350,000 records a day merged the year's 1.06 M server rows (21 M
    client entries) and 1.7 M client rows at once on every append: 13.8 s
    and 1.47 GB for one day's log."""
    rng = random.Random(seed)
    logs = [_random_log(tmp_path / "logs" / f"conn.{n}.log", rng, 12, 300, YEAR_END + n * 3 * DAY)
            for n in range(2)]  # fmt: skip
    whole, banded = tmp_path / "whole", tmp_path / "banded"
    ingest_paths(logs, whole)
    bands: dict[str, int] = {"servers": 0, "clients": 0}
    real = banded_merge._bands
    spy = lambda histogram, kind: (lambda out: bands.__setitem__(kind, bands[kind] + len(out)) or out)(  # noqa: E731
        real(histogram, kind)
    )
    monkeypatch.setattr(banded_merge, "_bands", spy)
    monkeypatch.setattr(banded_merge, "BAND_ROWS", {"servers": 7, "clients": 5})
    monkeypatch.setattr(banded_merge, "_BUCKET_BITS", {"servers": 0, "clients": 0})
    monkeypatch.setattr(banded_merge, "RUN_BYTES", run_bytes)
    ingest_paths(logs, banded)
    assert bands["servers"] > 6 and bands["clients"] > 12  # many bands (states, protos, ports)
    for year in ("2025", "2026"):
        for kind in ("servers", "clients"):
            files = [sorted((s / "sightings" / kind / f"year={year}").glob("s-*.parquet")) for s in (whole, banded)]
            a, b = (pq.read_table(f[-1]) for f in files)
            assert a.num_rows > 10 and a.equals(b), (year, kind)
    with Store.open(banded) as opened:
        assert not check_store(opened).problems
    _same(_history_answers(banded, "2026-01-02"), _history_answers(whole, "2026-01-02"))


def test_large_sightings_advance_a_week_at_a_time_and_at_their_year_s_end(
    tmp_path: Path, make_conn_log: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sightings (and month roll-ups) past rollups.BATCHED_ROWS are
    rewritten once ADVANCE_DAYS settled days wait (or their period is over),
    not on every settled day, and answer like a plain merge meanwhile. Before: a year of 350,000 records a day
    rewrote its sightings on every append, 10.3 s and 723 MB a day."""
    october = 1761350400.0  # 2025-10-25 00:00 UTC: day 0 (a year in the past: ingest refuses the future)
    store = tmp_path / "store"

    def days(*numbers: int) -> Path:
        lines = [conn_line(f"C{d}", ts=october + d * DAY + 60, resp_p=80 + d % 4, orig=f"10.0.0.{d % 7 + 1}")
                 for d in numbers]  # fmt: skip
        return make_conn_log(f"days{numbers[0]}.log", lines)

    def covered() -> list[str]:
        return sorted(_sightings(store)["2025"])

    def same_as_plain(since: str) -> None:
        plain = without_rollups(store, tmp_path / f"plain{len(list(tmp_path.iterdir()))}")
        _same(_history_answers(store, since), _history_answers(plain, since))

    ingest_paths([days(0, 1, 2, 3, 4)], store)  # Oct 25-29: small sightings advance daily
    assert covered() == [f"2025-10-{d}" for d in range(25, 28)]
    monkeypatch.setattr(rollups, "BATCHED_ROWS", 0)
    october_rollup = _rollups(store)["2025-10"]
    ingest_paths([days(5)], store)  # Oct 28 settled, one day waiting: no rewrite, of the month's roll-up neither
    assert covered()[-1] == "2025-10-27" and _rollups(store)["2025-10"] == october_rollup
    same_as_plain("2025-10-28")
    ingest_paths([days(*range(6, 16))], store)  # to Nov 9: Oct 28 .. Nov 7 waited a week
    assert covered()[-1] == "2025-11-07" and len(covered()) == 14
    assert sorted(_rollups(store)["2025-10"])[-1] == "2025-10-31"  # October is over: its roll-up is whole
    same_as_plain("2025-11-03")
    ingest_paths([days(*range(56, 67))], store)  # Dec 20-30
    assert covered()[-1] == "2025-12-28"
    ingest_paths([days(68)], store)  # Jan 1 2026: Dec 29 and 30 settled, two days waiting
    assert covered()[-1] == "2025-12-28"
    ingest_paths([days(69)], store)  # Jan 2: 2025 is over, its last days join at once
    assert covered()[-2:] == ["2025-12-29", "2025-12-30"]
    same_as_plain("2025-12-20")
    # A backfill starts the year afresh, with every settled day.
    generation = _sightings(store)["2025"]["2025-10-26"]
    ingest_paths([make_conn_log("late.log", [conn_line("Clate", ts=october + DAY + 90, resp_p=8443)])], store)
    assert _sightings(store)["2025"]["2025-10-26"] == generation + 1 and covered()[-1] == "2025-12-30"
    same_as_plain("2025-10-26")


def test_a_banded_merge_without_temporary_room_or_with_a_damaged_base_says_which(
    tmp_path: Path, make_conn_log: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The banded merge writes its runs under the temporary directory: no
    room there is one StoreError naming it (and TMPDIR); a damaged or
    missing old sightings file is the store's damage, set aside and redone,
    never blamed on the temporary directory (a first version wrapped every
    OSError, FileNotFoundError of a store file included)."""
    import tempfile

    monkeypatch.setattr(banded_merge, "BAND_ROWS", {"servers": 1, "clients": 1})
    first = make_conn_log("a.log", [conn_line(f"Ca{d}", ts=START + d * DAY + 60, resp_p=80 + d) for d in range(4)])
    later = make_conn_log("b.log", [conn_line("Cb", ts=START + 4 * DAY + 60, resp_p=443)])
    full, damaged_store = tmp_path / "full", tmp_path / "damaged"
    for store in (full, damaged_store):
        ingest_paths([first], store)
    with monkeypatch.context() as no_room:
        no_room.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
        with pytest.raises(StoreError, match="cannot write a year's sightings under .*no-such-directory.*TMPDIR"):
            ingest_paths([later], full)
    (damaged,) = (damaged_store / "sightings" / "clients").rglob("s-*.parquet")
    (missing,) = (damaged_store / "sightings" / "servers").rglob("s-*.parquet")
    damaged.write_bytes(b"damaged")
    missing.unlink()  # a FileNotFoundError is an OSError too: the store's, not the temporary directory's
    summary = ingest_paths([later], damaged_store)
    # The servers file is read first: the year's sightings are set aside (the clients file with them) and redone.
    assert [line.split()[4].rsplit("/", 2)[0] for line in summary.repairs] == ["sightings/servers"]
    with Store.open(damaged_store) as opened:
        assert not check_store(opened).problems
    plain = without_rollups(damaged_store, tmp_path / "plain")
    _same(_history_answers(damaged_store, "2026-11-02"), _history_answers(plain, "2026-11-02"))


def test_a_damaged_rollup_met_when_an_ingest_starts_is_set_aside_and_redone(
    tmp_path: Path, make_conn_log: Callable[..., Path]
) -> None:
    """An ingest first brings the store's roll-ups and sightings up to date
    (a store from before the sightings tier starts them from its month
    roll-ups): a damaged roll-up met there is set aside and redone, as in
    the ingest's own pass, not the ingest's end with "run check --repair"."""
    first = make_conn_log("a.log", [conn_line(f"Ca{d}", ts=START + d * DAY + 60, resp_p=80 + d) for d in range(5)])
    later = make_conn_log("b.log", [conn_line("Cb", ts=START + 5 * DAY + 60, resp_p=443)])
    store = tmp_path / "store"
    ingest_paths([first], store)
    with Store.open(store) as opened:  # the year's sightings dropped: started afresh from the roll-ups
        year = opened.ledger.rollups(month="2026", pending=None)["2026"]
        with opened.transaction(cleanup=[]):
            retired = opened.retire(year.paths(opened.root))
            opened.ledger.delete_rollup("2026")
        opened.hide(retired)
    (damaged,) = (store / "rollups" / "servers").rglob("r-*.parquet")
    damaged.write_bytes(b"damaged")
    summary = ingest_paths([later], store)
    assert [line.split()[4].rsplit("/", 2)[0] for line in summary.repairs] == ["rollups/servers"]
    assert (store / "damaged" / damaged.relative_to(store)).exists()
    assert "2026" in _sightings(store)
    with Store.open(store) as opened:
        assert not check_store(opened).problems
    plain = without_rollups(store, tmp_path / "plain")
    _same(_history_answers(store, "2026-11-02"), _history_answers(plain, "2026-11-02"))


@pytest.mark.parametrize("seed", [4, 5])
def test_new_client_ports_of_a_range_inside_a_year_s_sightings_read_them_not_its_days(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range that cuts a year's sightings (a few days of a year, a day
    cut at noon) tells its client ports new from the year's sightings (a
    key first seen that year in the range), not from the days it covers:
    the same answer as a plain merge of the days, none of the covered days
    read to tell them (only to merge the new ones' rows)."""
    from synack.ingest.snapshot import Snapshot
    from synack.inventory.store_reader import day_range

    rng = random.Random(seed)
    logs = [_random_log(tmp_path / "logs" / f"conn.{n}.log", rng, 12, 300, YEAR_END + n * 3 * DAY)
            for n in range(2)]  # fmt: skip
    late = _random_log(tmp_path / "logs" / "late.log", rng, 2, 40, YEAR_END + 9 * DAY)
    late.write_text(late.read_text().replace("10.0.", "10.7."))  # clients first seen late in 2025
    store = tmp_path / "store"
    ingest_paths([*logs, late], store)
    held = set(_sightings(store)["2025"])
    plain = without_rollups(store, tmp_path / "plain")
    days: list[str] = []
    real = Snapshot.read_partial

    def read(self: Snapshot, kind: str, partial: Any, **options: Any) -> Any:
        days.append(partial.day) if kind == "clients" else None
        return real(self, kind, partial, **options)

    monkeypatch.setattr(Snapshot, "read_partial", read)
    windows = [("2025-12-29", "2025-12-31"), ("2025-12-29T12:00:00", "2026-01-01"), ("2025-12-24", None)]
    for since, until in windows:
        want = inventory.Inventory(plain, nets="all").new_clients(since, until)
        pd.testing.assert_frame_equal(inventory.Inventory(store, nets="all").new_clients(since, until), want)
        times = [inventory.Inventory(s, nets="all").new_client_times(since, until) for s in (store, plain)]
        np.testing.assert_array_equal(*times)
        days.clear()
        client_ports.new_ports(store, *day_range(since, until), None, "all", False)
        assert not set(days) & held, (since, until)  # the days after the year's sightings only
    assert len(inventory.Inventory(plain, nets="all").new_clients("2025-12-29", "2025-12-31")) > 0
