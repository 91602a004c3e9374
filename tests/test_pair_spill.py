"""Distinct counts of (client port, server) pairs on disk equal the counts made in memory.

Before: `synack clients` over a year of 350,000 records a day held the
year's 21 M (client port, server) pairs at once and peaked at 1.7 GB
(bench/bench_read_side.py --rows-per-day 350000).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import Inventory, client_ports, pair_spill, server_ordered_pairs
from synack.inventory.pair_spill import PairSpill, distinct_counts
from tests.conftest import conn_header, conn_line, peer_of
from tests.test_address_bands import _store


@pytest.mark.parametrize("seed", [1, 2])
def test_a_spill_counts_what_memory_counts(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs written in several batches (repeated pairs across batches, many
    clients) counted a partition at a time give each key the distinct
    values a count in memory gives; every key in exactly one partition."""
    monkeypatch.setattr(pair_spill, "WRITE_ROWS", 257)
    rng = np.random.default_rng(seed)
    n = 5000
    codes = (rng.integers(0, 300, n).astype(np.uint64) << np.uint64(32)) | rng.integers(0, 5, n).astype(np.uint64)
    pairs = pa.table({"code": codes, "value": rng.integers(0, 40, n).astype(np.uint32)})
    keys, counts = distinct_counts(pairs)
    want = dict(zip(keys.tolist(), counts.tolist()))
    spill = PairSpill()
    try:
        for start in range(0, n, 1200):
            spill.write(pairs.slice(start, 1300))  # overlapping batches: pairs repeat
        got: dict[int, int] = {}
        for part_keys, part_counts in spill.counts():
            assert not set(part_keys.tolist()) & set(got)  # a key lies in one partition
            got.update(zip(part_keys.tolist(), part_counts.tolist()))
    finally:
        spill.close()
    assert got == want and len(want) > 500
    assert not spill.directory.exists()


def _year_store(tmp_path: Path, seed: int) -> Path:
    """Random pairs in December 2025 and a day in 2026 after them: the year's sightings count 2025's servers."""
    rng = random.Random(seed)
    year_end = 1766188800.0  # 2025-12-20
    hosts = [f"10.0.0.{i}" for i in range(15)] + ["fd00::1", "fd00::2"]
    logs = []
    for day, start in enumerate((year_end, year_end + 86400, year_end + 31 * 86400)):
        lines = [conn_line(f"C{day}x{i}", ts=start + i, orig=(o := rng.choice(hosts)), resp=peer_of(rng, hosts, o),
                           resp_p=rng.choice([22, 443, 8443]), proto=rng.choice(["tcp", "udp"]))
                 for i in range(300)]  # fmt: skip
        logs.append(tmp_path / f"conn{day}.log")
        logs[-1].write_text(conn_header() + "".join(lines))
    store = tmp_path / "year-store"
    ingest_paths(logs, store)
    return store


@pytest.mark.parametrize("seed", [3, 4])
def test_clients_counted_on_disk_answer_like_in_memory(tmp_path: Path, seed: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`clients` (distinct servers per client port) and `new_clients` with
    their pairs sent to disk give the answers counted in memory: over
    days (pairs merged with the rows) and over a year's sightings (pairs
    from the year's server rows), for the whole store and a range."""
    stores = [_store(tmp_path, seed), _year_store(tmp_path, seed)]
    questions = [("clients", {}), ("clients", {"since": "2026-11-19"}), ("new_clients", {"since": "2026-11-19"}),
                 ("clients", {"since": "2025-12-21"})]  # fmt: skip
    want = [[getattr(Inventory(s, nets="all"), q)(**kw) for q, kw in questions] for s in stores]
    assert Inventory(stores[1]).status()["sightings_years"]
    spills: list[int] = []
    real = PairSpill.__init__

    def counted(self: PairSpill) -> None:
        spills.append(1)
        real(self)

    monkeypatch.setattr(PairSpill, "__init__", counted)
    monkeypatch.setattr(client_ports, "STREAM_ROWS", 9)
    monkeypatch.setattr(client_ports, "MERGE_ROWS", 5)
    monkeypatch.setattr(server_ordered_pairs, "HELD_BYTES", 20)
    for store, expected in zip(stores, want):
        inv = Inventory(store, nets="all")
        for (q, kw), answer in zip(questions, expected):
            pd.testing.assert_frame_equal(getattr(inv, q)(**kw), answer, obj=f"{q} {kw}")
            assert q != "clients" or kw or answer["servers"].max() > 1
        assert len(spills) >= 2, store  # the pairs went to disk
        spills.clear()


def test_a_merge_of_one_sensor_names_it_for_every_key_and_none_for_keys_seen_without_one() -> None:
    """The sensors of a merge whose rows all name one sensor are that sensor
    for every key (without a join per key); keys whose rows had no sensor
    column get none, and two sensors are joined per key."""
    import datetime as dt

    when = pa.array([dt.datetime(2026, 11, 1, tzinfo=dt.UTC)] * 3, pa.timestamp("us", tz="UTC"))

    def rows(clients: list[str], sensors: list[str] | None) -> pa.Table:
        table = pa.table({"client_h": clients, "proto": ["tcp"] * 3, "server_p": pa.array([22, 22, 80], pa.uint16()),
                          "first_seen": when, "last_seen": when, "connections": [1, 2, 3],
                          "services": pa.array([["ssh"], None, ["http"]], pa.list_(pa.string()))})  # fmt: skip
        return table.append_column("sensor", pa.array(sensors)) if sensors is not None else table

    key = ["client_h", "proto", "server_p"]
    one = client_ports._Merging(key)
    one.add(rows(["a", "b", "a"], ["edge-1"] * 3))
    assert one.result().column("sensors").to_pylist() == ["edge-1", "edge-1", "edge-1"]
    partly = client_ports._Merging(key)
    partly.add(rows(["a", "b", "a"], ["edge-1"] * 3))
    partly.add(rows(["c", "c", "c"], None))
    merged = dict(zip(zip(*(partly.result().column(k).to_pylist() for k in key)),
                      partly.result().column("sensors").to_pylist()))  # fmt: skip
    assert merged[("c", "tcp", 22)] == "" and merged[("a", "tcp", 80)] == "edge-1"
    two = client_ports._Merging(key)
    two.add(rows(["a", "b", "a"], ["edge-2", "edge-1", "edge-1"]))
    assert sorted(two.result().column("sensors").to_pylist()) == ["edge-1", "edge-1", "edge-2"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_first_uses_by_hash_or_by_sort_are_each_port_s_earliest(seed: int) -> None:
    """_earliest gives each distinct code ascending with its earliest time,
    hashed or sorted, whether codes repeat (a file's client ports, one row
    per server) or not (a day of millions of new ports); a stream of
    tables switches to hashing while its ports repeat."""
    rng = np.random.default_rng(seed)
    for n, distinct in [(5000, 50), (5000, 5000), (1, 1), (0, 1)]:
        codes = (
            (rng.integers(0, distinct, n).astype(np.uint64) * np.uint64(2654435761)) if n else np.zeros(0, np.uint64)
        )
        times = rng.integers(0, 10**12, n)
        want: dict[int, int] = {}
        for c, t in zip(codes.tolist(), times.tolist()):
            want[c] = min(t, want.get(c, t))
        for hashed in (False, True):
            got_codes, got_times = client_ports._earliest(codes, times, hashed)
            assert got_codes.tolist() == sorted(want) and got_times.tolist() == [want[c] for c in sorted(want)]
    uses = client_ports._PackedUses()
    clients = pa.array(rng.integers(1, 20, 3000).astype(np.uint32))
    ports = pa.array(rng.choice([22, 80, 443], 3000).astype(np.uint16))
    first = pa.array(rng.integers(0, 10**12, 3000), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    table = pa.table({"client_v4": clients, "proto": ["tcp"] * 3000, "server_p": ports, "first_seen": first})
    for start in range(0, 3000, 500):
        uses.add(table.slice(start, 500))
    assert uses.hashed  # 60 ports in 500 rows
    got = uses.new().to_pylist()
    rows = table.to_pylist()
    want_first = {}
    for r in rows:
        key = (r["client_v4"], r["server_p"])
        want_first[key] = min(r["first_seen"], want_first.get(key, r["first_seen"]))
    assert {(r["client_v4"], r["server_p"]): r["first_seen"] for r in got} == want_first
