"""Inventories: planted facts, real-corpus truth, and merge/order properties."""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.schema import ANSWERED, OPEN
from synack.inventory import client_ports, server_ports
from synack.inventory.identities import IDENTITY_COLUMNS
from synack.samples.generate import OUT, PLANTED
from tests import shorthands as inventory
from tests.conftest import ZEEK_CORPUS, conn_header, conn_line, store_table

UTC = dt.UTC


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inv") / "store"
    ingest_paths([OUT], path)
    return path


def keys(df: pd.DataFrame, host: str = "server_h") -> set[tuple[str, str, int]]:
    return set(zip(df[host], df["proto"], df["server_p"].astype(int)))


def test_servers_have_documented_columns_and_sort(store: Path) -> None:
    df = inventory.servers(store)
    assert list(df.columns) == [
        "server_h", "proto", "server_p", "port_name", "services", "first_seen", "first_in_range", "last_seen",
        "connections", "clients", "sensors", "server_reply", "synack_seen", "answers_all", "new",
        "product", "version", "tls_names", "host_names",
    ]  # fmt: skip
    assert (df["product"] == "").all()  # the samples hold no identity logs
    assert df["synack_seen"].all()  # the samples' handshakes are whole
    assert not df["answers_all"].any()
    assert df["server_h"].tolist()[:2] == ["10.1.0.10", "10.1.0.10"] and df["server_h"].iloc[-1] == "fd00:10::5"
    assert df.loc[df.server_p == 22, "port_name"].item() == "ssh"


def test_default_nets_exclude_the_internet(store: Path) -> None:
    assert ("93.184.216.34", "tcp", 443) not in keys(inventory.servers(store))
    assert ("93.184.216.34", "tcp", 443) in keys(inventory.servers(store, nets="all"))
    assert keys(inventory.servers(store, nets="10.1.0.10/32")) == {("10.1.0.10", "tcp", 80), ("10.1.0.10", "tcp", 443)}


def test_the_new_port_of_the_last_day_is_the_only_new_one(store: Path) -> None:
    last = dt.date.fromisoformat(PLANTED["last_day"])
    new = inventory.new_servers(store, last, last + dt.timedelta(days=1))
    assert keys(new) == PLANTED["new_on_last_day"]
    assert new["sensors"].tolist() == ["edge-1"]
    assert new["server_reply"].iloc[0] == PLANTED["banners"][("10.1.0.11", 8443)]
    assert inventory.new_servers(store, last - dt.timedelta(days=2), last).empty


def test_scan_targets_are_closed_or_absent_never_servers(store: Path) -> None:
    served = {h for h, _, _ in keys(inventory.servers(store, nets="all"))}
    assert PLANTED["scan_target"] not in served
    closed = inventory.closed(store)
    assert keys(closed) == PLANTED["closed"]
    assert (closed["probes"] >= 4).all() and not closed["also_served"].any()


def test_flipped_originator_and_midstream(store: Path) -> None:
    found = keys(inventory.servers(store))
    assert PLANTED["flipped"] in found and PLANTED["orig_is_server"] in found
    assert PLANTED["midstream_only"] not in found


def test_gone_servers(store: Path) -> None:
    gone = inventory.gone_servers(store, idle_days=1, as_of="newest")
    assert keys(gone) == PLANTED["gone_after_day_2"]
    assert gone["idle_days"].iloc[0] > 1


def test_allowlist_suppresses_and_marks(store: Path, tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("# expected\n10.1.0.0/24 tcp 8000-9000  # app servers\n")
    last = PLANTED["last_day"]
    assert inventory.new_servers(store, last, allow=allow).empty
    shown = inventory.new_servers(store, last, allow=allow, show_allowed=True)
    assert shown["allowed"].tolist() == [True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.1.0.0/24 tcp\n", "line 1: expected"),
        ("# c\n10.1.0.300 tcp 80\n", "line 2: not a host or network"),
        ("10.1.0.1 sctp 80\n", "protocol must be"),
        ("10.1.0.1 tcp 70000\n", "port out of range"),
        ("10.1.0.1 tcp http\n", "not a port"),
    ],
)
def test_bad_allowlist_lines_are_named(store: Path, tmp_path: Path, text: str, message: str) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text(text)
    with pytest.raises(inventory.InventoryError, match=message):
        inventory.new_servers(store, "2026-11-21", allow=allow)


def test_bad_dates_and_networks(store: Path) -> None:
    with pytest.raises(inventory.InventoryError, match="not a date"):
        inventory.servers(store, since="yesterday-ish")
    with pytest.raises(inventory.InventoryError, match="not a network"):
        inventory.servers(store, nets="10.0.0.0/40")
    with pytest.raises(inventory.InventoryError, match="empty range"):
        inventory.servers(store, since="2026-11-21", until="2026-11-20")


def test_clients_views(store: Path) -> None:
    df = inventory.clients(store)
    assert list(df.columns) == [
        "client_h", "proto", "server_p", "port_name", "services", "first_seen", "first_in_range", "last_seen",
        "connections", "servers", "sensors", "new",
    ]  # fmt: skip
    web = df[(df.client_h == "10.1.0.101") & (df.server_p == 443)]
    assert len(web) == 1 and web["servers"].item() == 2  # 10.1.0.10 and 93.184.216.34: nets select clients here
    # Zeek's detected service beside the IANA name, as servers show them.
    assert (web["port_name"].item(), web["services"].item()) == ("https", "ssl")
    pairs = inventory.client_pairs(store)
    assert len(pairs) >= len(df) and "services" in pairs.columns
    # A client port's services are the union of its pairs' services.
    union = pairs.groupby(["client_h", "proto", "server_p"])["services"].agg(
        lambda s: ",".join(sorted({v for text in s for v in text.split(",") if v}))
    )
    assert df.set_index(["client_h", "proto", "server_p"])["services"].sort_index().equals(union.sort_index())
    assert set(df["services"]) >= {"ssl", "http", "ssh", "dns"}
    # Every answer names its sensors (comma-joined): a client port's are those of its pairs, which are the records'.
    records = store_table(store).to_pandas()
    seen_by = records.groupby(["orig_h", "resp_h", "proto", "resp_p"])["sensor"].agg(lambda s: ",".join(sorted(set(s))))
    pair_sensors = pairs.set_index(["client_h", "server_h", "proto", "server_p"])["sensors"]
    direct = [(seen_by[key], sensors) for key, sensors in pair_sensors.items() if key in seen_by.index]
    assert len(direct) >= 0.8 * len(pair_sensors)  # the rest were logged server first (open_orig)
    assert all(logged == sensors for logged, sensors in direct)
    union = pairs.groupby(["client_h", "proto", "server_p"])["sensors"].agg(
        lambda s: ",".join(sorted({v for text in s for v in text.split(",")}))
    )
    assert df.set_index(["client_h", "proto", "server_p"])["sensors"].sort_index().equals(union.sort_index())
    assert set(df["sensors"]) == {"edge-1", "core-2,edge-1"}
    new = inventory.new_clients(store, PLANTED["last_day"])
    assert set(new["server_p"]) == {8443} and set(new["services"]) == {""}  # the planted server's is unknown


def test_sensor_filter(store: Path) -> None:
    json_only = inventory.servers(store, sensors="core-2")
    assert set(json_only["sensors"]) == {"core-2"}
    assert ("10.1.0.11", "tcp", 8443) not in keys(json_only)


def test_ingest_keeps_the_aggregates_current_and_queries_only_read(
    tmp_path: Path, make_conn_log: Callable[..., Path]
) -> None:
    store = tmp_path / "store"
    ingest_paths([make_conn_log("a.log", [conn_line("A", resp="10.9.0.1")])], store)
    assert keys(inventory.servers(store)) == {("10.9.0.1", "tcp", 80)}
    ingest_paths([make_conn_log("b.log", [conn_line("B", resp="10.9.0.2")], opened="2026-11-21-11-00-00")], store)
    before = sorted((p, p.stat().st_mtime_ns) for p in store.rglob("*"))
    assert keys(inventory.servers(store)) == {("10.9.0.1", "tcp", 80), ("10.9.0.2", "tcp", 80)}
    assert not inventory.upgrade_needed(store)
    assert sorted((p, p.stat().st_mtime_ns) for p in store.rglob("*")) == before  # the query wrote nothing


def test_a_daily_does_not_depend_on_the_order_of_its_records(store: Path) -> None:
    """Dailies are a function of the day's set of records: shuffled records
    give the same tables, row for row (hosts numbered in address order)."""
    import numpy as np

    from synack.ingest.aggregates import daily_clients, daily_servers

    rng = np.random.default_rng(7)
    for day in ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"):
        records = _day_records(store, day)
        shuffled = records.take(pa.array(rng.permutation(len(records))))
        for i, field in enumerate(shuffled.schema):  # dictionaries in the new order of first appearance
            if pa.types.is_dictionary(field.type):
                values = shuffled.column(i).cast(field.type.value_type)
                shuffled = shuffled.set_column(i, field.name, values.dictionary_encode())
        for build in (daily_servers, daily_clients):
            assert build(shuffled).equals(build(records)), (day, build.__name__)


def _day_records(store: Path, day: str) -> pa.Table:
    import pyarrow.dataset as ds

    from synack.ingest.aggregates import RECORD_COLUMNS
    from synack.ingest.schema import CORE_SCHEMA

    schema = pa.schema([CORE_SCHEMA.field(c) for c in RECORD_COLUMNS])
    folder = store / "conn" / f"date={day}"
    return ds.dataset(folder, format="parquet", schema=schema).to_table(columns=RECORD_COLUMNS).combine_chunks()


@pytest.mark.parametrize("shuffled", [False, True])
def test_distinct_clients_of_merged_lists_are_the_union_of_the_sets(shuffled: bool) -> None:
    """Each key's client count is the size of the union of its rows' lists:
    sorted distinct lists (merged aggregates: the longest row of a key is
    taken as it is and the others looked up in it) and, `shuffled`, lists
    out of order (sorted whole), null lists and null entries besides, in
    slices of every size."""
    import numpy as np
    import pyarrow as pa

    from synack.inventory.server_ports import client_counts

    rng = np.random.default_rng(11 + shuffled)
    n = 300
    lists: list[list[int | None] | None] = []
    for i in range(n):
        values = sorted(set(rng.integers(0, 2**32 - 2, rng.integers(0, 50)).tolist()) | {7, 9 + i % 5})
        if shuffled and i % 4 == 0:
            values = [*values[::-1], None]
        lists.append(None if i % 29 == 0 else values)
    rows = pa.table({
        "server_h": [f"10.0.0.{i % 23}" for i in range(n)], "proto": ["tcp"] * n, "server_p": [443] * n,
        "clients_v4": pa.array(lists, pa.list_(pa.uint32())), "clients_text": pa.array([[]] * n, pa.list_(pa.string())),
    })  # fmt: skip
    union: dict[str, set[int]] = {}
    for host, values in zip(rows.column("server_h").to_pylist(), lists):
        union.setdefault(host, set()).update(v for v in values or [] if v is not None)
    for limit in (1, 40, 10**9):
        counted = client_counts(rows, limit=limit).to_pydict()
        assert dict(zip(counted["server_h"], counted["clients"])) == {h: len(v) for h, v in union.items()}, limit


def test_distinct_counts_in_bounded_slices_equal_one_count() -> None:
    import numpy as np
    import pyarrow as pa

    from synack.inventory.server_ports import client_counts, key_slices

    rng = np.random.default_rng(5)
    n = 400
    rows = pa.table({
        "server_h": [f"10.0.0.{i % 37}" for i in range(n)], "proto": ["tcp"] * n,
        "server_p": [80 + i % 3 for i in range(n)],
        "clients_v4": [list(rng.integers(0, 60, rng.integers(0, 40)).astype(np.uint32)) for _ in range(n)],
        "clients_text": [[f"fd00::{x}" for x in rng.integers(0, 9, rng.integers(0, 3))] for _ in range(n)],
    })  # fmt: skip
    whole = client_counts(rows, limit=10**9).to_pydict()
    for limit in (1, 25, 300):
        assert client_counts(rows, limit=limit).to_pydict() == whole
    keys = np.repeat(np.arange(5), [3, 1, 4, 2, 1])
    slices = key_slices(keys, np.full(11, 10), 25)
    # Cut at the first key start past each 25 entries: whole keys, at most 25 entries plus one key's each.
    assert [(s.start, s.stop) for s in slices] == [(0, 3), (3, 8), (8, 10), (10, 11)]
    assert max(s.stop - s.start for s in key_slices(keys, np.full(11, 10), 1)) == 4  # a key is never split


def test_sightings_answer_like_a_fresh_read(store: Path) -> None:
    seen_servers = server_ports.server_sightings(store, nets="all")
    seen_clients = client_ports.client_sightings(store, nets="all")
    for day in ("2026-11-19", "2026-11-20", "2026-11-21"):
        fresh = inventory.new_servers(store, day, nets="all").drop(columns=IDENTITY_COLUMNS)
        assert fresh.equals(server_ports.new_servers(store, day, nets="all", sightings=seen_servers))
        fresh = inventory.new_clients(store, day, nets="all")
        assert fresh.equals(client_ports.new_clients(store, day, nets="all", sightings=seen_clients))
    numeric = [(ip.version, int(ip)) for ip in map(ipaddress.ip_address, server_ports.hosts_serving(store, nets="all"))]
    assert numeric == sorted(numeric) and len(numeric) == inventory.servers(store, nets="all")["server_h"].nunique()


def test_port_names_vector_equals_one_by_one() -> None:
    from synack.inventory.port_names import port_name, port_names

    ports = pd.Series([22, 53, 53, 443, 9, 65535, 22, 161, 0] * 3)
    protos = pd.Series(["tcp", "udp", "tcp", "tcp", "udp", "tcp", "udp", "udp", "icmp"] * 3)
    assert port_names(ports, protos).tolist() == [port_name(p, t) for p, t in zip(ports, protos)]
    assert port_names(ports, protos)[:4].tolist() == ["ssh", "domain", "domain", "https"]


def test_a_thousand_connections_are_one_row(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    lines = [conn_line(f"C{i}", ts=1795000000.0 + i, orig="10.2.0.7", resp="10.2.0.1") for i in range(1000)]
    store = tmp_path / "store"
    ingest_paths([make_conn_log("conn.log", lines)], store)
    df = inventory.clients(store)
    assert len(df) == 1 and df["connections"].item() == 1000 and df["servers"].item() == 1
    assert inventory.servers(store)["connections"].item() == 1000


def test_partial_days_are_exact(store: Path) -> None:
    day = dt.datetime(2026, 11, 21, tzinfo=UTC)
    morning = inventory.servers(store, day, day + dt.timedelta(hours=12), nets="all")
    afternoon = inventory.servers(store, day + dt.timedelta(hours=12), day + dt.timedelta(days=1), nets="all")
    whole = inventory.servers(store, day, day + dt.timedelta(days=1), nets="all")
    merged = pd.concat([morning, afternoon]).groupby(["server_h", "proto", "server_p"])["connections"].sum()
    assert merged.to_dict() == whole.set_index(["server_h", "proto", "server_p"])["connections"].to_dict()
    assert (morning["last_seen"] < day + dt.timedelta(hours=12)).all()


def corpus_folders() -> list[str]:
    if not ZEEK_CORPUS.is_dir():
        return []
    return sorted(p.name for p in ZEEK_CORPUS.iterdir() if (p / "zeek8-conn.log").exists())


@pytest.mark.parametrize("name", corpus_folders())
def test_servers_equal_tshark_truth_on_the_corpus(name: str, tmp_path: Path) -> None:
    folder = ZEEK_CORPUS / name
    ingest_paths([folder / "zeek8-conn.log"], tmp_path / "store")
    df = inventory.servers(tmp_path / "store", nets="all")
    tcp = df[df.proto == "tcp"]
    with open(folder / "expected_tcp_servers.tsv") as f:
        truth = {(r[0], r[1]) for r in list(csv.reader(f, delimiter="\t"))[1:] if r}
    assert set(zip(tcp.server_h, tcp.server_p.astype(str))) == truth


# -- properties ----------------------------------------------------------------

HOSTS = ["10.3.0.1", "10.3.0.2", "10.3.0.3", "fd00::3", "fd00::4"]
BASE = 1795046400.0  # 2026-11-19 00:00 UTC
conns = st.lists(
    st.tuples(
        st.floats(0, 3 * 86400 - 1),
        st.sampled_from(HOSTS),
        st.sampled_from(HOSTS),
        st.sampled_from([22, 80, 443]),
        st.sampled_from([("ShADadFf", "SF"), ("Sr", "REJ"), ("S", "S0"), ("DdA", "OTH"), ("HcADF", "SH")]),
    ).filter(lambda row: (":" in row[1]) == (":" in row[2])),  # a connection's hosts are of one family
    min_size=1,
    max_size=40,
)


OPEN_TCP = ("ShADadFf", "SF")


def _log_lines(rows: list[tuple[float, str, str, int, tuple[str, str]]]) -> list[str]:
    return [
        conn_line(
            f"C{i}", ts=BASE + t, orig=o, resp=r, resp_p=p, history=h, state=s, resp_pkts="0" if s == "S0" else "3"
        )
        for i, (t, o, r, p, (h, s)) in enumerate(rows)
    ]


def _compare(df: pd.DataFrame) -> list[tuple[object, ...]]:
    cols = ["server_h", "proto", "server_p", "first_seen", "last_seen", "connections", "clients"]
    return sorted(map(tuple, df[cols].astype(str).values.tolist())) if not df.empty else []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=conns, cut=st.floats(0.1, 2.9))
def test_a_range_is_the_merge_of_its_sub_ranges(tmp_path: Path, rows: list, cut: float) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    log = folder / "conn.log"

    log.write_text(conn_header() + "".join(_log_lines(sorted(rows))) + "#close\tx\n")
    store = folder / "store"
    ingest_paths([log], store)
    start, end = dt.datetime.fromtimestamp(BASE, UTC), dt.datetime.fromtimestamp(BASE + 3 * 86400, UTC)
    mid = start + dt.timedelta(days=cut)
    whole = inventory.servers(store, start, end, nets="all")
    halves = [inventory.servers(store, start, mid, nets="all"), inventory.servers(store, mid, end, nets="all")]
    if whole.empty:
        assert all(h.empty for h in halves)
        return
    both = pd.concat([h for h in halves if not h.empty])
    merged = both.groupby(["server_h", "proto", "server_p"]).agg(
        first_seen=("first_seen", "min"), last_seen=("last_seen", "max"), connections=("connections", "sum")
    )
    expect = whole.set_index(["server_h", "proto", "server_p"])[["first_seen", "last_seen", "connections"]]
    assert merged.sort_index().astype(str).to_dict() == expect.sort_index().astype(str).to_dict()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=conns, split=st.integers(0, 40))
def test_ingest_order_does_not_change_results(tmp_path: Path, rows: list, split: int) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    lines = _log_lines(rows)
    a = folder / "a.log"
    b = folder / "b.log"
    a.write_text(conn_header(opened="2026-11-21-01-00-00") + "".join(lines[:split]) + "#close\tx\n")
    b.write_text(conn_header(opened="2026-11-21-02-00-00") + "".join(lines[split:]) + "#close\tx\n")
    ingest_paths([a, b], folder / "ab")
    ingest_paths([b], folder / "ba")
    ingest_paths([a], folder / "ba")
    for fn in (inventory.servers, inventory.closed, inventory.clients):
        assert _compare_any(fn(folder / "ab", nets="all")) == _compare_any(fn(folder / "ba", nets="all"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=conns, cut=st.floats(0.1, 2.9))
@example(rows=[(3600.0, "fd00::3", "fd00::4", 22, OPEN_TCP), (7200.0, "10.3.0.1", "fd00::4", 22, OPEN_TCP)], cut=1.0)
def test_distinct_clients_equal_a_count_over_the_records(tmp_path: Path, rows: list, cut: float) -> None:
    """The per-day client sets of the server dailies, merged over a range,
    count what a plain pandas count over the stored records counts
    (IPv4 and IPv6 clients, across partial days)."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    log = folder / "conn.log"
    log.write_text(conn_header() + "".join(_log_lines(sorted(rows))) + "#close\tx\n")
    store = folder / "store"
    ingest_paths([log], store)
    start = dt.datetime.fromtimestamp(BASE, UTC) + dt.timedelta(days=cut / 2)
    end = start + dt.timedelta(days=cut)
    got = inventory.servers(store, start, end, nets="all")
    records = pd.read_parquet(store / "conn", columns=["ts", "outcome", "server_h", "proto", "server_p", "client_h"])
    served = records[
        records["outcome"].astype(str).isin([OPEN, ANSWERED])
        & (records["ts"] >= pd.Timestamp(start)) & (records["ts"] < pd.Timestamp(end))
    ]  # fmt: skip
    expect = served.astype({"server_h": str, "proto": str}).groupby(["server_h", "proto", "server_p"])["client_h"]
    want = {(h, p, int(port)): n for (h, p, port), n in expect.nunique().items()}
    assert {(h, p, int(port)): n for h, p, port, n in got[["server_h", "proto", "server_p", "clients"]].values} == want


def _compare_any(df: pd.DataFrame) -> list[tuple[object, ...]]:
    return sorted(map(tuple, df.astype(str).values.tolist())) if not df.empty else []


@pytest.mark.parametrize("band_rows", [1, 7])
def test_a_range_merged_in_address_bands_answers_like_one_merge(
    store: Path, band_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synack.inventory import server_ports

    def answers() -> list[pd.DataFrame]:
        return [
            inventory.servers(store, nets="all"),
            inventory.servers(store, "2026-11-19T06:00", nets="all"),
            inventory.new_servers(store, "2026-11-20", nets="all"),
            inventory.gone_servers(store, idle_days=1, as_of="newest"),
        ]

    whole = answers()
    monkeypatch.setattr(server_ports, "BAND_ROWS", band_rows)
    bands = server_ports.address_bands(store, "servers", None, None, server_ports.serving(False), None, None,
                                       rows=band_rows, by_port=False)  # fmt: skip
    assert len(bands) > 3  # really split
    for banded, one in zip(answers(), whole):
        pd.testing.assert_frame_equal(banded, one)


def test_an_inventory_holds_its_filters_and_answers_like_the_functions(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synack.inventory import Inventory
    from synack.inventory import server_ports as sp

    reads = []
    real = sp.server_sightings
    monkeypatch.setattr(sp, "server_sightings", lambda *a, **k: reads.append(1) or real(*a, **k))
    inv = Inventory(store, nets="all", as_of="2026-11-22")
    pd.testing.assert_frame_equal(inv.servers("3d"), inventory.servers(store, "2026-11-19", nets="all"))
    reads.clear()  # the shorthand reads its own
    pd.testing.assert_frame_equal(inv.clients(), inventory.clients(store, nets="all"))
    days = ("2026-11-19", "2026-11-20", "2026-11-21")
    expected = [inventory.new_servers(store, day, nets="all") for day in days]
    reads.clear()
    for day, want in zip(days, expected):
        pd.testing.assert_frame_equal(inv.new_servers(day), want)
    assert reads == [1]  # the all-time sightings were read once per Inventory (servers reads first_seen alone)
    status = inv.status()
    assert status["days"] == 4 and status["first_day"] == "2026-11-18" and status["last_day"] == "2026-11-21"
    assert status["records"] == sum(s["records"] for s in status["sensors"].values()) > 0
    assert not status["upgrade_needed"] and status["monthly_rollups"] == 1
    bad = tmp_path / "allow.txt"
    bad.write_text("10.0.0.0/8 tcp 80-\n")
    with pytest.raises(inventory.InventoryError, match="80-"):
        Inventory(store, allow=bad)  # a bad allowlist fails when the Inventory is made, not in a later query
    with pytest.raises(inventory.InventoryError):
        Inventory(store, nets="not-a-net")


def test_an_empty_answer_has_the_columns_and_dtypes_of_a_full_one(store: Path) -> None:
    from synack.inventory import Inventory

    inv = Inventory(store, nets="all")
    queries = {
        "servers": lambda since: inv.servers(since),
        "clients": lambda since: inv.clients(since),
        "client_pairs": lambda since: inv.client_pairs(since),
        "closed": lambda since: inv.closed(since),
        "new_servers": lambda since: inv.new_servers(since, show_allowed=True),
        "new_clients": lambda since: inv.new_clients(since),
        "gone_servers": lambda since: inv.gone_servers(since, idle_days=1),
    }
    for name, query in queries.items():
        full = query("2026-11-21" if name == "gone_servers" else "2026-11-18")
        empty = query("2026-11-18T00:00:01" if name == "gone_servers" else "2030-01-01")
        assert len(full) and empty.empty, name
        assert dict(empty.dtypes) == dict(full.dtypes), name


def test_inferred_servers_are_counted_marked_and_left_out_when_strict(tmp_path: Path) -> None:
    """A SPAN port that dropped the SYN-ACK: the server's data still makes it a server, marked."""
    from synack.inventory import Inventory
    from tests.conftest import conn_header, conn_line

    log = tmp_path / "conn.log"
    log.write_text(
        conn_header()
        + conn_line("C1", resp="10.5.0.1", resp_p=443, history="SADdafF", state="SF")  # SYN-ACK missed
        + conn_line("C2", ts=1795000100.0, resp="10.5.0.2", resp_p=22, history="ShADadFf")  # seen
        + conn_line("C3", ts=1795000000.0, resp="10.5.0.3", resp_p=80, history="SADdaf", state="S3")  # missed...
        + conn_line("C4", ts=1795000200.0, resp="10.5.0.3", resp_p=80)  # ...then seen
        + conn_line("C5", resp="10.5.0.4", resp_p=25, history="Sa", state="S0")  # a bare ACK: no server
        + conn_line("C6", resp="10.5.0.5", resp_p=23, history="SdcADFr", state="RSTR")  # data, then reset
    )
    ingest_paths([log], tmp_path / "store")
    inv = Inventory(tmp_path / "store", nets="all", as_of="2026-12-01")
    seen = inv.servers().set_index("server_h")["synack_seen"].to_dict()
    assert seen == {"10.5.0.1": False, "10.5.0.2": True, "10.5.0.3": True, "10.5.0.5": False}
    first = inv.servers().set_index("server_h")["first_seen"]
    assert first["10.5.0.3"].timestamp() == 1795000000.0  # the inferred sighting is the first
    assert set(inv.new_servers("2026-11-01")["server_h"]) == set(seen)
    assert set(inv.clients()["server_p"]) == {443, 22, 80, 23}
    assert inv.closed().empty  # data before the reset: not a closed port

    strict = Inventory(tmp_path / "store", nets="all", as_of="2026-12-01", strict=True)
    assert set(strict.servers()["server_h"]) == {"10.5.0.2", "10.5.0.3"}
    assert strict.servers().set_index("server_h")["first_seen"]["10.5.0.3"].timestamp() == 1795000200.0
    assert set(strict.new_servers("2026-11-01")["server_h"]) == {"10.5.0.2", "10.5.0.3"}
    assert set(strict.clients()["server_p"]) == {22, 80}


def test_first_seen_is_the_first_sighting_whatever_the_range(store: Path) -> None:
    """A range-limited inventory still says which servers are new: first_seen
    is all-time, first_in_range is the range's, `new` marks the first seen in it."""
    from synack.inventory import Inventory

    inv = Inventory(store, as_of="newest")
    last = dt.date.fromisoformat(PLANTED["last_day"])
    day = inv.servers(last, last + dt.timedelta(days=1)).set_index(["server_h", "proto", "server_p"])
    everything = inv.servers().set_index(["server_h", "proto", "server_p"])
    ssh = day.loc[("10.1.0.11", "tcp", 22)]
    assert ssh["first_seen"] == everything.loc[("10.1.0.11", "tcp", 22), "first_seen"] < pd.Timestamp(last, tz="UTC")
    assert ssh["first_in_range"] >= pd.Timestamp(last, tz="UTC") and not ssh["new"]
    assert set(day.index[day["new"]]) == PLANTED["new_on_last_day"]
    clients = inv.clients(last, last + dt.timedelta(days=1))
    assert (clients["first_seen"] <= clients["first_in_range"]).all()
    assert set(clients.loc[clients["new"], "server_p"]) == {8443}


def test_first_sensors_rank_any_number_of_sensors_and_break_ties_by_name() -> None:
    """10,000 sensors in one store made new client ports fail ("too many sensors to rank first sightings")."""
    import pyarrow as pa

    from synack.inventory.client_ports import _first_sensors

    n = 10_000
    when = pa.array([1_795_000_000_000_000 + (i % 7) for i in range(n)], pa.int64()).cast(pa.timestamp("us", "UTC"))
    rows = pa.table({"client_h": ["10.0.0.1"] * n, "proto": ["tcp"] * n, "server_p": [443] * n, "first_seen": when,
                     "sensor": [f"s{n - i:05d}" for i in range(n)]})  # fmt: skip
    (first,) = _first_sensors(rows, ["client_h", "proto", "server_p"]).to_pylist()
    earliest = [f"s{n - i:05d}" for i in range(n) if i % 7 == 0]
    assert first["first_sensor"] == min(earliest)  # the earliest time, then the smallest name


_HOSTS = ["10.0.0.9", "10.0.0.18", "9.1.1.1", "::1", "2001:db8::1", "fe80::2", "255.255.255.255", "0.0.0.0"]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(_HOSTS), st.sampled_from(["tcp", "udp"]), st.integers(0, 3),
                               st.sampled_from([0, 1, 2, None]), st.sampled_from([b"a", b"b", None])),
                     max_size=40),
       sort=st.sampled_from([["server_h", "proto", "server_p"], ["first_seen", "server_h", "server_p"],
                             ["server_p"], ["reply", "server_h"]]))  # fmt: skip
def test_sort_by_address_orders_as_pandas_with_numeric_addresses(
    rows: list[tuple[str, str, int, int | None, bytes | None]], sort: list[str]
) -> None:
    """The ranked lexsort gives pandas' stable multi-column order with each
    address as its number (IPv4 first), empty values last."""
    from synack.inventory.query_rows import sort_by_address

    df = pd.DataFrame(rows, columns=["server_h", "proto", "server_p", "first_seen", "reply"])
    df["first_seen"] = pd.to_datetime(df["first_seen"], unit="s", utc=True)
    numeric = df.assign(_h=[(ipaddress.ip_address(h).version, int(ipaddress.ip_address(h))) for h in df["server_h"]])
    expected = numeric.sort_values([c if c != "server_h" else "_h" for c in sort], kind="stable").index
    assert list(sort_by_address(df, sort).index) == list(expected)


def _reference_merge(rows: pa.Table) -> pd.DataFrame:
    """merge_servers as Arrow group-bys of the key's text (what it was before its packed-key merge)."""
    import pyarrow.compute as pc

    key = ["server_h", "proto", "server_p"]
    rows = rows.append_column("synack_seen", pc.fill_null(pc.equal(rows.column("state"), "served"), True))
    g = rows.sort_by([("first_seen", "ascending"), ("sensor", "ascending")]).group_by(key, use_threads=False)
    g = g.aggregate([("first_seen", "min"), ("last_seen", "max"), ("connections", "sum"), ("sensor", "first"),
                     ("synack_seen", "any")])  # fmt: skip
    g = g.rename_columns([*key, "first_seen", "last_seen", "connections", "first_sensor", "synack_seen"])
    replies = rows.filter(pc.is_valid(rows.column("reply_ts")))
    first_reply = (
        replies.sort_by([("reply_ts", "ascending"), ("server_reply", "ascending")])
        .group_by(key, use_threads=False)
        .aggregate([("server_reply", "first")])
        .rename_columns([*key, "server_reply"])
    )
    df = g.to_pandas().merge(first_reply.to_pandas(), on=key, how="left")
    df["server_reply"] = df["server_reply"].astype(object).where(df["server_reply"].notna(), None)
    for column, out in (("services", "services"), ("sensor", "sensors")):
        values = rows.column(column).combine_chunks()
        if pa.types.is_list(values.type):
            parents = pc.list_parent_indices(values)
            flat = pa.table({**{k: pc.take(rows.column(k), parents) for k in key}, column: pc.list_flatten(values)})
        else:
            flat = rows.select([*key, column])
        flat = flat.filter(pc.is_valid(flat.column(column))).group_by([*key, column]).aggregate([])
        joined = flat.sort_by([(column, "ascending")]).group_by(key, use_threads=False).aggregate([(column, "list")])
        texts = pc.binary_join(joined.column(f"{column}_list"), ",")
        df = df.merge(joined.drop_columns([f"{column}_list"]).append_column(out, texts).to_pandas(), on=key,
                      how="left")  # fmt: skip
    df["services"] = df["services"].fillna("")
    return df


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(
    st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1"]), st.sampled_from(["tcp", "udp"]), st.integers(20, 23),
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 5), st.sampled_from(["a", "b", None]),
    st.sampled_from(["served", "inferred"]), st.lists(st.sampled_from(["ssh", "http", "dns"]), max_size=2),
    st.sampled_from([None, 1, 2]), st.sampled_from([b"x", b"y", None])), min_size=1, max_size=40))  # fmt: skip
def test_merge_servers_equals_a_group_by_of_the_key_text(rows: list[tuple[object, ...]]) -> None:
    """The packed-key merge gives what Arrow's group-bys gave: every
    aggregate, the first sensor and reply by their tie rules, the joined
    services and sensors, the keys in the order they are first seen."""
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table({
        "server_h": [r[0] for r in rows], "proto": [r[1] for r in rows], "server_p": pa.array([r[2] for r in rows],
                                                                                              pa.uint16()),
        "first_seen": pa.array([r[3] for r in rows], pa.int64()).cast(ts),
        "last_seen": pa.array([r[3] + r[4] for r in rows], pa.int64()).cast(ts),
        "connections": pa.array([r[5] for r in rows], pa.int64()),
        "sensor": pa.array([r[6] for r in rows], pa.string()),
        "state": [r[7] for r in rows], "services": pa.array([r[8] for r in rows], pa.list_(pa.string())),
        "reply_ts": pa.array([r[9] for r in rows], pa.int64()).cast(ts),
        "server_reply": pa.array([r[10] if r[9] is not None else None for r in rows], pa.binary()),
    })  # fmt: skip
    got = server_ports.merge_servers(table)
    expected = _reference_merge(table)
    columns = [c for c in expected.columns if c != "server_p"]
    pd.testing.assert_frame_equal(got[columns].reset_index(drop=True), expected[columns].reset_index(drop=True),
                                  check_dtype=False)  # fmt: skip
    assert list(got["server_p"]) == list(expected["server_p"])
    assert (got["clients"] == 0).all()
