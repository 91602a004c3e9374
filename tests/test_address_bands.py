"""Answers merged a band of addresses at a time equal the answers merged at once.

Before: a day on which 31 hosts answer every port (2 M server ports) took
`synack servers -f csv` to 1.1 GB and `new-ports` to 1.0 GB, every row of
the answer held as one DataFrame (bench/bench_wide_day.py).
"""

from __future__ import annotations

import io
import random
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import SynackError
from synack.inventory import Inventory, address_bands, answer_stream, band_split, client_ports, export, store_inventory
from synack.inventory.query_rows import sort_by_address
from synack.inventory.store_reader import InventoryError
from tests.conftest import conn_header, conn_line, peer_of, run_synack

DAY = 86400.0
START = 1795000000.0
QUESTIONS = [
    ("servers", {}), ("servers", {"since": "2026-11-19"}), ("new_servers", {"since": "2026-11-19"}),
    ("clients", {}), ("clients", {"since": "2026-11-19"}), ("client_pairs", {}),
    ("new_clients", {"since": "2026-11-19"}),
]  # fmt: skip


def _store(tmp_path: Path, seed: int) -> Path:
    """Three days of random connections between IPv4 and IPv6 hosts, two sensors' worth of logs."""
    rng = random.Random(seed)
    hosts = [f"10.1.{rng.randrange(3)}.{rng.randrange(40)}" for _ in range(40)] + ["fd00::5", "2001:db8::9"]
    store = tmp_path / "store"
    for day in range(3):
        lines = []
        for i in range(400):
            orig = rng.choice(hosts)
            resp = peer_of(rng, hosts, orig)
            lines.append(conn_line(
                f"C{day}x{i}", ts=START + (day + rng.random()) * DAY, orig=orig, resp=resp,
                resp_p=rng.choice([22, 80, 443, 3389, 8000 + rng.randrange(50)]), proto=rng.choice(["tcp", "udp"]),
                history=rng.choice(["ShADadFf", "ShADadFf", "Sr", "Dd"]),
            ))  # fmt: skip
        lines.sort(key=lambda line: float(line.split("\t", 1)[0]))
        log = tmp_path / f"conn.{day}.log"
        log.write_text(conn_header() + "".join(lines))
        ingest_paths([log], store, sensor=f"edge-{day % 2}")
    return store


@pytest.mark.parametrize("seed", [3, 4])
def test_banded_answers_are_the_answers_merged_at_once(tmp_path: Path, seed: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Every banded question, with and without a sort, a limit and a
    filter, gives the same rows in the same order and with the same dtypes
    as the answer merged at once; and the bands were many."""
    store = _store(tmp_path, seed)
    whole = Inventory(store, nets="all", as_of="2026-11-30")
    filters: list[dict[str, object]] = [{}, {"sort": "first_seen"}, {"limit": 7}, {"sort": "server_p,first_seen",
                                        "limit": 11}, {"port": "8000-8049"}]  # fmt: skip
    expected = {(q, f): getattr(whole, QUESTIONS[q][0])(**QUESTIONS[q][1], **filters[f])
                for q in range(len(QUESTIONS)) for f in range(len(filters))}  # fmt: skip
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 40)
    banded = Inventory(store, nets="all", as_of="2026-11-30")
    for (q, f), want in expected.items():
        question, kw = QUESTIONS[q]
        frames = list(banded.frames(question, **kw, **filters[f]))
        if not filters[f] and not question.startswith("new"):  # new ports are gathered and sorted by time
            assert len(frames) > 1 or len(want) <= 40, f"{question}: one band of {len(want)} rows"
        got = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True), obj=f"{question} {kw} {filters[f]}")
        assert got.attrs["nets"] == want.attrs["nets"]


@pytest.mark.parametrize("split_rows", [band_split.SPLIT_ROWS, 40])
def test_client_bands_read_each_client_file_once_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       split_rows: int) -> None:  # fmt: skip
    """Client questions in many bands read each client file once (band_split), answer from the
    split in every band, and give the answers merged at once; files of many row groups split a few
    of them at a time (SPLIT_ROWS: several batches per band) too."""
    monkeypatch.setattr(band_split, "SPLIT_ROWS", split_rows)
    if split_rows < band_split.SPLIT_ROWS:
        monkeypatch.setattr("synack.ingest.partials.ROW_GROUP", {"servers": 16, "clients": 16})
    store = _store(tmp_path, 5)
    whole = Inventory(store, nets="all", as_of="2026-11-30")
    asked = {q: kw for q, kw in QUESTIONS if q in ("clients", "client_pairs", "new_clients")}  # the last of each
    expected = {q: getattr(whole, q)(**kw) for q, kw in asked.items()}
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 40)
    splits: list[str] = []
    served: list[int] = []
    real_split, real_read = band_split.BandSplit._split, band_split.BandSplit.read
    pieces: list[dict[str, tuple[Path, int]]] = []
    monkeypatch.setattr(band_split.BandSplit, "_split", lambda self, rel, *a: splits.append(rel) or pieces.append(
        self.pieces) or real_split(self, rel, *a))  # fmt: skip
    monkeypatch.setattr(band_split.BandSplit, "read", lambda self, rel, stamp, rows, band, options: served.append(
        band) or real_read(self, rel, stamp, rows, band, options))  # fmt: skip
    banded = Inventory(store, nets="all", as_of="2026-11-30")
    for question, want in expected.items():
        splits.clear(), served.clear()
        frames = list(banded.frames(question, **asked[question]))
        assert len(frames) > 1 or question == "new_clients"
        pd.testing.assert_frame_equal(answer_stream.joined(frames), want.reset_index(drop=True), obj=question)
        assert splits and len(splits) == len(set(splits)), f"{question}: each client file split once"
        assert len(set(served)) > 2, f"{question}: the bands answered from the split"
        if split_rows < band_split.SPLIT_ROWS:
            assert max(groups for _, groups in pieces[-1].values()) > 2, "a file split in several batches per band"


def test_a_damaged_client_file_is_found_by_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client file damaged under a banded answer is DamagedFile (never a different answer)."""
    store = _store(tmp_path, 6)
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 40)
    inv = Inventory(store, nets="all", as_of="2026-11-30")
    assert len(inv.bands("clients")) > 1
    real_split = band_split.BandSplit._split

    def damage_then_split(self: band_split.BandSplit, rel: str, *args: object) -> None:
        victim = store / rel
        data = bytearray(victim.read_bytes())
        for i in range(len(data) // 3, len(data) // 3 + 32):
            data[i] ^= 0xFF
        victim.write_bytes(bytes(data))
        real_split(self, rel, *args)

    monkeypatch.setattr(band_split.BandSplit, "_split", damage_then_split)
    with pytest.raises(SynackError, match="damaged"):  # the CLI's one-line errors
        list(inv.frames("clients"))


@pytest.mark.parametrize("question", ["clients", "new_servers"])
def test_no_room_for_temporary_files_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         question: str) -> None:  # fmt: skip
    """A banded answer that cannot write its temporary files (the band split, the sorted runs) says
    where and how to choose another place (TMPDIR) in one InventoryError, not an OSError."""
    store = _store(tmp_path, 7)
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 40)
    inv = Inventory(store, nets="all", as_of="2026-11-30")
    full = tmp_path / "full"
    full.write_text("a file, not a directory")
    monkeypatch.setattr(tempfile, "tempdir", str(full))
    with pytest.raises(InventoryError, match=r"cannot write .* under .*full.*TMPDIR"):
        list(inv.frames(question, since="2026-11-19"))


@pytest.mark.parametrize("seed", [3, 4])
def test_hosts_serving_are_the_servers_hosts(tmp_path: Path, seed: int) -> None:
    """hosts_serving (server addresses read alone) names the hosts of servers(), in its order, for any range."""
    store = _store(tmp_path, seed)
    for strict in (False, True):
        inv = Inventory(store, nets="all", as_of="2026-11-30", strict=strict)
        for since, until in ((None, None), ("2026-11-19", None), ("2026-11-18", "2026-11-19")):
            servers = inv.servers(since, until)
            assert inv.hosts_serving(since, until) == list(dict.fromkeys(servers["server_h"])), (strict, since)
            assert len(inv.hosts_serving(since, until)) > 5


@pytest.mark.parametrize("seed", [3, 4])
def test_first_sightings_of_keys_are_the_sightings_first_seen(tmp_path: Path, seed: int) -> None:
    """server_firsts and client_firsts (key and first_seen read alone, a
    file at a time cut to the keys asked about, a minimum per key) give
    each key asked about its first_seen in server_sightings /
    client_sightings, leave out keys never seen, for any networks, sensors
    and strictness."""
    from synack.inventory import client_ports, server_ports

    store = _store(tmp_path, seed)
    rng = random.Random(seed)
    for kind, everything, firsts, key in (
        ("servers", server_ports.server_sightings, server_ports.server_firsts, server_ports.KEY),
        ("clients", client_ports.client_sightings, client_ports.client_firsts, ["client_h", "proto", "server_p"]),
    ):
        for where in ({"nets": "all"}, {"nets": "all", "strict": True}, {"nets": ["10.1.1.0/24", "fd00::/8"]},
                      {"nets": "all", "sensors": ["edge-1"]}, {}):  # fmt: skip
            whole = everything(store, **where)[[*key, "first_seen"]].astype({"server_p": "int64"})
            asked = whole.sample(frac=0.5, random_state=rng.randrange(100))[key]
            unknown = pd.DataFrame({key[0]: ["10.200.0.1", "fd00::77"], "proto": ["tcp", "udp"], "server_p": [1, 2]})
            got = firsts(store, pd.concat([asked, unknown], ignore_index=True), **where)
            got = sort_by_address(got.astype({"server_p": "int64"}), key).reset_index(drop=True)
            want = sort_by_address(whole.merge(asked, on=key), key).reset_index(drop=True)
            pd.testing.assert_frame_equal(got[[*key, "first_seen"]], want, check_dtype=False, obj=f"{kind} {where}")
            assert len(got) > 1 or where == {}, (kind, where)


def test_client_pair_bands_count_pairs_not_the_years_client_ports(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Bands of client pairs hold about PAIR_ROWS pairs each, counted in the
    files the pairs are read from, even when a year's client sightings
    (one row per client port, no server) stand for the year. Before: 20
    client ports of 600 pairs made one band, and the year's 3.9 M pairs of
    the bench 6 bands of 650,000 answer rows (703 MB)."""
    year_end = 1766188800.0  # 2025-12-20: the year's sightings are written once 2026-01-20 is ingested
    lines = [conn_line(f"C{c}x{v}", ts=year_end + c * 60 + v, orig=f"10.0.0.{c}", resp=f"10.9.{v}.1", resp_p=443)
             for c in range(20) for v in range(30)]  # fmt: skip
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    old.write_text(conn_header() + "".join(lines))
    new.write_text(conn_header() + conn_line("Cnew", ts=year_end + 31 * DAY, resp_p=22))
    store = tmp_path / "store"
    ingest_paths([old, new], store)
    inv = Inventory(store, nets="all")
    assert inv.status()["sightings_years"], "the test needs the year's sightings"
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 100)
    bands = inv.bands("clients", by_port=False)
    frames = list(inv.frames("client_pairs", bands=bands))
    assert len(bands) >= 5 and max(len(f) for f in frames) <= 130
    assert sum(len(f) for f in frames) == len(inv.client_pairs()) == 601


def test_server_bands_weigh_the_client_lists_they_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of `servers` weigh each server's client lists (LIST_SHARE
    entries count as an answer row): a few servers with many clients make
    several bands, not one, and the banded answer is the answer merged at
    once. Before: a year of 350,000 records a day answered `servers --nets
    all` in 3 bands, the first of 585,384 rows holding 19.8 M client entries (609 MB)."""
    lines = [conn_line(f"C{s}x{c}", ts=START + s * 300 + c, orig=f"10.2.{c // 250}.{c % 250}", resp=f"10.1.0.{s}",
                       resp_p=443) for s in range(12) for c in range(400)]  # fmt: skip
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines))
    store = tmp_path / "store"
    ingest_paths([log], store)
    whole = Inventory(store, nets="all").servers()
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 50)
    inv = Inventory(store, nets="all")
    assert inv.bands("servers") == [None]  # 12 answer rows
    weighed = inv.bands("servers", lists=True)
    assert len(weighed) >= 2  # 4,800 client entries weigh 120 answer rows: more than a band of lists (100)
    frames = list(inv.frames("servers"))
    assert len(frames) == len(weighed)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)
    assert whole["clients"].tolist() == [400] * 12


def test_one_weighed_band_of_servers_is_not_weighed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the answer's bands, weighed with their rows and client lists,
    are one, the servers merge takes it at once: the rows are not read a
    second time to be weighed by rows (server_ports' own bands). A host
    filter (one band found without a read) still weighs its rows."""
    from synack.inventory import server_ports

    store = _store(tmp_path, 3)
    inner: list[int] = []
    real = server_ports.address_bands
    monkeypatch.setattr(server_ports, "address_bands", lambda *a, **k: inner.append(1) or real(*a, **k))
    whole = Inventory(store, nets="all").servers()
    assert inner == [] and len(whole) > 20
    one = Inventory(store, nets="all").servers(host=whole["server_h"].iloc[0])
    assert inner == [1] and len(one) > 0


def test_every_band_is_a_partition_of_the_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bands' networks do not meet, come in address order and hold
    every server (IPv6 in the last), a host in exactly one."""
    store = _store(tmp_path, 5)
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 20)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 20)
    inv = Inventory(store, nets="all")
    answer = inv.servers()
    bands = address_bands.address_bands(inv.snapshot(), "servers", None, None, ("served", "inferred"), None, None)
    assert len(bands) > 3
    owners = {h: [i for i, band in enumerate(bands) if any(__import__("ipaddress").ip_address(h) in n for n in band)]
              for h in answer["server_h"].unique()}  # fmt: skip
    assert all(len(o) == 1 for o in owners.values()), owners
    order = [owners[h][0] for h in answer["server_h"]]
    assert order == sorted(order)  # the answer's address order is the bands' order


def test_the_cli_writes_a_banded_answer_whole_in_every_format(tmp_path: Path) -> None:
    """`synack servers` and `new-ports` write the same rows banded (SYNACK_ANSWER_ROWS
    is not a setting: the bands are forced here through the library) as at once: CSV, JSON lines and Parquet."""
    store = _store(tmp_path, 6)
    inv = Inventory(store, nets="all")
    want = inv.servers()
    for fmt, write, read in [
        ("csv", export.write_csv, lambda b: pd.read_csv(io.BytesIO(b))),
        ("jsonl", export.write_jsonl, lambda b: pd.read_json(io.BytesIO(b), lines=True)),
    ]:
        one, many = io.StringIO(), io.StringIO()
        assert write(want, one) == len(want)
        assert write(iter([want.iloc[:10], want.iloc[10:10], want.iloc[10:]]), many) == len(want)
        assert many.getvalue() == one.getvalue(), fmt
        assert len(read(one.getvalue().encode())) == len(want)
    sink = io.BytesIO()
    assert export.write_parquet(iter([want.iloc[:10], want.iloc[10:]]), sink) == len(want)
    table = pq.read_table(pa.BufferReader(sink.getvalue()))
    assert table.num_rows == len(want) and table.schema.field("server_reply").type == pa.binary()
    result = run_synack("servers", "--store", str(store), "--nets", "all", "-f", "csv", "-o", str(tmp_path / "s.csv"))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(want)
    assert f"{len(want):,} rows written" in result.stderr


def test_gathered_frames_of_unlike_widths_sort_as_one() -> None:
    """Frames whose compact forms differ (a count past 16 bits in one, a
    dictionary past 8 bits in another, a column all empty in a third) sort
    as one DataFrame would: every row, the first frame's dtypes."""
    a = pd.DataFrame({"server_h": ["10.0.0.2", "10.0.0.1"], "connections": [70000, 3], "services": ["a", "b"]})
    b = pd.DataFrame({"server_h": [f"10.0.{i // 250}.{i % 250}" for i in range(300)], "connections": [5] * 300,
                      "services": [str(i % 100) for i in range(300)]})  # fmt: skip
    c = pd.DataFrame({"server_h": ["10.0.0.3"], "connections": [1], "services": [None]})
    got = pd.concat(list(answer_stream.sorted_frames(iter([a, b, c]), ["connections", "server_h"])))
    whole = pd.concat([a, b, c], ignore_index=True)
    want = sort_by_address(whole, ["connections", "server_h"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.astype(got.dtypes.to_dict()))
    assert list(got["connections"].head(2)) == [1, 3] and got["connections"].iloc[-1] == 70000


def test_batches_have_one_schema_and_the_answers_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inventory.batches: Arrow record batches of one schema (replies
    binary, times UTC) holding the answer's rows in its order."""
    store = _store(tmp_path, 7)
    want = Inventory(store, nets="all").servers()
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 40)
    batches = list(Inventory(store, nets="all").batches("servers"))
    assert len(batches) > 1 and len({b.schema for b in batches}) == 1
    assert batches[0].schema.field("server_reply").type == pa.binary()
    assert batches[0].schema.field("first_seen").type == pa.timestamp("us", tz="UTC")
    got = pa.Table.from_batches(batches).to_pandas()
    assert list(got["server_h"]) == list(want["server_h"]) and list(got["server_p"]) == list(want["server_p"])


def test_a_banded_report_writes_the_files_of_one_merged_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report gathered band by band, its big tables kept in files
    (KEEP_ROWS and READ_ROWS tiny), writes the same CSVs, JSON tables and
    page figures as the report gathered at once."""
    from synack.inventory import report_tables
    from synack.inventory.daily_report import build_report
    from synack.inventory.report_files import write_report

    store = _store(tmp_path, 8)
    written = {}
    for name, (rows, keep) in {"whole": (10**9, 10**9), "banded": (40, 7)}.items():
        monkeypatch.setattr(address_bands, "ANSWER_ROWS", rows)
        monkeypatch.setattr(address_bands, "PAIR_ROWS", rows)
        monkeypatch.setattr(report_tables, "KEEP_ROWS", keep)
        monkeypatch.setattr(report_tables, "READ_ROWS", 5)
        report = build_report(Inventory(store, nets="all", as_of="2026-11-30"), "2026-11-21")
        out = tmp_path / name
        out.mkdir()
        written[name] = {p.name: p for p in write_report(report, out)}
        if name == "banded":
            assert report.stored["new_servers"].path is not None  # really kept in a file
            assert len(report.tables["new_servers"]) == 7
    assert written["whole"].keys() == written["banded"].keys()
    for file, path in written["whole"].items():
        if file.endswith(".csv"):
            assert path.read_text() == written["banded"][file].read_text(), file
        elif file.endswith(".json"):
            import json

            whole, banded = json.loads(path.read_text()), json.loads(written["banded"][file].read_text())
            whole.pop("generated"), banded.pop("generated")
            assert whole == banded
            assert len(whole["new_servers"]) > 7


def test_few_new_client_ports_are_one_band_found_before_any_merge(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """new_clients first tells the range's client ports new (client_ports.new_ports), so when
    they fit one band no band is weighed (the range's client rows are not read to weigh them)
    and only their rows are merged; when they do not, the answer is banded as before. Both
    give the answer of the store's whole client sightings."""
    store = _store(tmp_path, 7)
    whole = Inventory(store, nets="all", as_of="2026-11-30")
    kept = whole.client_sightings()
    want = whole.new_clients("2026-11-19")
    assert len(want) > 40
    weighed: list[int] = []
    real = Inventory.bands
    monkeypatch.setattr(Inventory, "bands", lambda self, *a, **k: weighed.append(1) or real(self, *a, **k))
    fresh = Inventory(store, nets="all", as_of="2026-11-30")
    pd.testing.assert_frame_equal(fresh.new_clients("2026-11-19"), want)
    assert weighed == []
    with_sightings = client_ports_new(store, kept)
    pd.testing.assert_frame_equal(with_sightings.reset_index(drop=True), want.reset_index(drop=True),
                                  check_like=True)  # fmt: skip
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    banded = Inventory(store, nets="all", as_of="2026-11-30")
    frames = list(banded.frames("new_clients", "2026-11-19"))
    assert weighed == [1] and len(frames) >= 1
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), want.reset_index(drop=True))


def client_ports_new(store: Path, sightings: pd.DataFrame) -> pd.DataFrame:
    """new_clients of 2026-11-19 on, told new by the store's whole client sightings (the merge of every row)."""
    from synack.inventory import client_ports

    return client_ports.new_clients(store, "2026-11-19", None, nets="all", sightings=sightings)


def test_clients_that_fit_one_band_are_answered_without_weighing_bands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clients` is tried as one band under a budget of ANSWER_ROWS keys
    (client_ports.KEY_BUDGET): an answer that fits never weighs bands (a
    read of the whole range); one that does not stops at the budget and is
    answered in bands, the same rows either way."""
    store = _store(tmp_path, 8)
    want = Inventory(store, nets="all", as_of="2026-11-30").clients()
    weighed: list[str] = []
    real = store_inventory.address_bands
    monkeypatch.setattr(store_inventory, "address_bands", lambda *a, **kw: weighed.append(a[1]) or real(*a, **kw))
    frames = list(Inventory(store, nets="all", as_of="2026-11-30").frames("clients"))
    assert len(frames) == 1 and not weighed
    pd.testing.assert_frame_equal(frames[0], want)
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 40)
    monkeypatch.setattr(client_ports, "STREAM_ROWS", 30)  # merged again every 30 rows: the budget is met mid-range
    monkeypatch.setattr(client_ports, "MERGE_ROWS", 10)
    stopped: list[int] = []
    real_check = client_ports._within_budget
    monkeypatch.setattr(client_ports, "_within_budget", lambda keys: stopped.append(keys) or real_check(keys))
    frames = list(Inventory(store, nets="all", as_of="2026-11-30").frames("clients"))
    assert weighed == ["clients"] and len(frames) > 1 and len(want) > 40
    assert any(keys > 40 for keys in stopped)
    pd.testing.assert_frame_equal(answer_stream.joined(frames), want)


def test_pair_bands_weigh_a_range_s_rows_as_counts_per_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of client pairs count each client's rows as (client, count)
    once HISTOGRAM_ROWS numbers are held: the same bands as counting them
    all at once (a year of 350k records a day held 82 M numbers, 1.6 GB)."""
    store = _store(tmp_path, 9)
    monkeypatch.setattr(address_bands, "PAIR_ROWS", 40)
    inv = Inventory(store, nets="all", as_of="2026-11-30")
    whole = inv.bands("clients", by_port=False)
    assert len(whole) > 3
    collapsed: list[int] = []
    real = address_bands._Histogram._collapse
    monkeypatch.setattr(address_bands._Histogram, "_collapse", lambda self: collapsed.append(self.held) or real(self))
    monkeypatch.setattr(address_bands, "HISTOGRAM_ROWS", 25)
    assert Inventory(store, nets="all", as_of="2026-11-30").bands("clients", by_port=False) == whole
    assert len(collapsed) > 3  # held as counts after every few files
