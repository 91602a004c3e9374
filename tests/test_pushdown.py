"""Filters pushed down to the read: one host's client pairs read only the
row groups that hold them, a host's pairs as a server only the files' rows
of that server; every answer the same as filtering the whole answer.

Before: `synack clients --detail --host 10.0.0.7` on the bench year merged
every client pair of the year and filtered after (22 s, 2.1 GB).
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from synack.ingest import store_files
from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import Inventory
from synack.inventory.query_rows import sort_by_address
from tests.conftest import conn_header, conn_line, peer_of

DAY = 86400.0
START = 1795000000.0


def _file(tmp_path: Path, rows: int, row_group: int) -> pa.Buffer:
    """A Parquet file in server order with clients spread over its row groups."""
    rng = np.random.default_rng(7)
    servers = np.sort(rng.integers(0, 50, rows)).astype(np.uint32)
    table = pa.table({"server_v4": servers, "client_v4": rng.integers(0, 2000, rows).astype(np.uint32),
                      "state": pa.array(rng.choice(["served", "rejected"], rows)).dictionary_encode(),
                      "connections": rng.integers(1, 9, rows)})  # fmt: skip
    path = tmp_path / "f.parquet"
    pq.write_table(table, path, row_group_size=row_group, write_page_checksum=True)
    return pa.py_buffer(path.read_bytes())


@pytest.mark.parametrize("clients", [[5], [5, 77, 1999], list(range(0, 2000, 3))])
def test_a_narrowed_read_is_the_filtered_read(tmp_path: Path, clients: list[int]) -> None:
    """narrowed_read gives what pq.read_table gives with the same columns,
    filter and schema (its narrowing test a part of the filter), whether it
    narrows (a few clients) or declines (a third of them: most row groups
    hold one)."""
    data = _file(tmp_path, 20_000, 500)
    keep = pc.field("client_v4").isin(pa.array(clients, pa.uint32())) & (pc.field("state") == "served")
    schema = pa.schema([("server_v4", pa.uint32()), ("client_v4", pa.uint32()), ("state", pa.string()),
                        ("connections", pa.int64())])  # fmt: skip
    options = {"columns": ["server_v4", "connections"], "filters": keep, "schema": schema}
    expected = pq.read_table(pa.BufferReader(data), **options)
    narrowed = store_files.narrowed_read(data, options, pc.field("client_v4").isin(pa.array(clients, pa.uint32())))
    if len(clients) > 3:
        assert narrowed is None  # most row groups hold one: read whole
    else:
        assert narrowed is not None and narrowed.equals(expected) and 0 < len(narrowed) < 100


def _random_log(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(3000):
        lines.append(conn_line(
            f"C{i}", ts=START + rng.random() * 3 * DAY, orig=f"10.0.{rng.randrange(4)}.{rng.randrange(30)}",
            resp=rng.choice([f"10.1.0.{rng.randrange(60)}", "10.0.0.7"]),
            resp_p=rng.choice([22, 80, 443, 8443, 3389]), proto=rng.choice(["tcp", "udp"]),
        ))  # fmt: skip
    lines.sort(key=lambda line: float(line.split("\t", 1)[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(conn_header() + "".join(lines))
    return path


@pytest.mark.parametrize("seed", [1, 2])
def test_a_hosts_pairs_are_the_pairs_of_that_host(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """client_pairs(host=) (its pairs as a client, read narrowed, and as a
    server, read by server order) equals the whole answer filtered, for a
    client, a server, a host that is both and a network; small row groups
    make the narrowing real."""
    monkeypatch.setattr("synack.ingest.partials.ROW_GROUP", {"servers": 64, "clients": 64})
    store = tmp_path / "store"
    ingest_paths([_random_log(tmp_path / "logs" / "conn.log", seed)], store, chunk_bytes=60_000)
    inv = Inventory(store, nets="all")
    everything = inv.client_pairs()
    reads = []
    real = store_files.narrowed_read
    monkeypatch.setattr(store_files, "narrowed_read", lambda data, options, narrow: reads.append(
        real(data, options, narrow) is not None) or real(data, options, narrow))  # fmt: skip
    for host in ("10.0.1.7", "10.1.0.12", "10.0.0.7", "10.0.2.0/28"):
        got = inv.client_pairs(host=host)
        net = ipaddress.ip_network(host)
        mine = everything[[any(ipaddress.ip_address(h) in net for h in pair)
                           for pair in zip(everything["client_h"], everything["server_h"])]]  # fmt: skip
        assert len(mine) > 0, host
        assert got.reset_index(drop=True).equals(mine.reset_index(drop=True)), host
        # the clients of that host too, from the same narrowed reads
        clients = inv.clients(host=host)
        whole = inv.clients()
        assert clients.reset_index(drop=True).equals(
            whole[[ipaddress.ip_address(h) in net for h in whole["client_h"]]].reset_index(drop=True)
        )
    assert any(reads)  # some reads were narrowed


def test_a_host_s_client_rows_are_read_in_its_address_family_only(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The client questions of an IPv4 host read no file for the other
    addresses' stream (client_h), those of an IPv6 host none for the IPv4
    one (client_v4), and answer what the whole answer filtered gives.
    Before: `synack host` read the year's twelve client roll-ups twice, once
    for a stream that could hold no row of the host."""
    rng = random.Random(9)
    hosts = [f"10.0.0.{i}" for i in range(12)] + [f"fd00::{i:x}" for i in range(1, 9)]
    lines = [
        conn_line(
            f"C{i}",
            ts=START + rng.random() * 2 * DAY,
            orig=(orig := rng.choice(hosts)),
            resp=peer_of(rng, hosts, orig),
            resp_p=rng.choice([22, 443, 8443]),
            proto=rng.choice(["tcp", "udp"]),
        )
        for i in range(800)
    ]
    lines.sort(key=lambda line: float(line.split("\t", 1)[0]))
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines))
    store = tmp_path / "store"
    ingest_paths([log], store)
    everything = Inventory(store, nets="all")
    pairs, clients = everything.client_pairs(), everything.clients()
    key = ["client_h", "server_h", "proto", "server_p"]
    assert pairs.equals(sort_by_address(pairs, key).reset_index(drop=True))  # IPv4 and IPv6: sorted whole
    v4_pairs = Inventory(store, nets="10.0.0.0/8").client_pairs()  # IPv4 alone: in order as merged
    assert len(v4_pairs) > 20 and v4_pairs.equals(sort_by_address(v4_pairs, key).reset_index(drop=True))
    real = store_files.StoreFS.parsed  # every verified read parses through it (the bytes may be the snapshot's)
    streams: list[str] = []

    def counted(self: store_files.StoreFS, path: object, *args: object, **options: object) -> pa.Table:
        columns = options.get("columns") or []
        if "clients" in str(path) and columns:
            streams.append(str(columns[0]))  # type: ignore[index]
        return real(self, path, *args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(store_files.StoreFS, "parsed", counted)
    for host, other in (("10.0.0.3", "client_h"), ("fd00::3", "client_v4")):
        streams.clear()
        inv = Inventory(store, nets=host)
        got_pairs, got_clients = inv.client_pairs(), inv.clients()
        assert streams and other not in streams, (host, streams)
        want = pairs[pairs["client_h"] == host].reset_index(drop=True)
        assert len(want) > 0 and got_pairs.reset_index(drop=True).equals(want), host
        assert got_clients.reset_index(drop=True).equals(clients[clients["client_h"] == host].reset_index(drop=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_range_filter_of_networks_passes_the_numbers_of_those_networks(seed: int) -> None:
    """in_range_of (adjacent and overlapping IPv4 networks joined into one
    range each) keeps exactly the numbers inside some network, NOT_V4 only
    when a network is IPv6; a band of "all" is one range, not one per CIDR."""
    from synack.ingest.aggregates import NOT_V4
    from synack.inventory.address_bands import _ipv4_interval
    from synack.inventory.query_rows import in_range_of, merged_spans

    rng = random.Random(seed)
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for _ in range(12):
        prefix = rng.choice([8, 16, 24, 30, 32])
        nets.append(ipaddress.ip_network((rng.randrange(1 << 32) >> (32 - prefix) << (32 - prefix), prefix)))
    nets += list(ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=10))[:3]  # adjacent ones
    numbers = [int(n.network_address) + d for n in nets for d in (-1, 0, 1)] + [int(n.broadcast_address) + d
               for n in nets for d in (-1, 0, 1)] + [rng.randrange(1 << 32) for _ in range(500)]  # fmt: skip
    numbers = [x for x in numbers if 0 <= x < NOT_V4] + [NOT_V4]
    table = pa.table({"server_v4": pa.array(numbers, pa.uint32())})
    for with_v6 in (False, True):
        given = nets + ([ipaddress.ip_network("fd00::/8")] if with_v6 else [])
        kept = table.filter(in_range_of(given, "server_v4")).column("server_v4").to_pylist()
        want = [x for x in numbers if (x == NOT_V4 and with_v6) or any(
            int(n.network_address) <= x <= int(n.broadcast_address) for n in nets if x != NOT_V4)]  # fmt: skip
        assert sorted(kept) == sorted(want)
    band = _ipv4_interval(7, 3_000_000_000)
    assert len(band) > 10 and merged_spans([(int(n.network_address), int(n.broadcast_address)) for n in band]) == [
        (7, 2_999_999_999)]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_values_joined_per_key_are_the_distinct_values_joined_back(seed: int) -> None:
    """joined_per_key (keys numbered by a join, pairs made distinct by a
    sort) gives each key what distinct_joined gives joined back: sorted
    distinct non-null values, comma-joined, "" for a key without any;
    for text and list columns, packed-integer and text keys."""
    from synack.inventory.query_rows import distinct_joined, joined_per_key

    rng = random.Random(seed)
    n = rng.randrange(0, 400)
    words = ["http", "ssl", "dns", "", "é", "a,b", None]
    for packed in (True, False):
        key = {"k_hosts": pa.array([rng.randrange(5) << 32 | rng.randrange(3) for _ in range(n)], pa.uint64()),
               "k_port": pa.array([rng.randrange(4) for _ in range(n)], pa.int64())} if packed else {
               "client_h": pa.array([rng.choice(["10.0.0.1", "fd00::1", "10.0.0.2"]) for _ in range(n)]),
               "server_p": pa.array([rng.randrange(3) for _ in range(n)], pa.uint16())}  # fmt: skip
        by = list(key)
        for as_list in (False, True):
            if as_list:
                values = pa.array([rng.sample(words[:-1], rng.randrange(3)) if rng.random() > 0.1 else None
                                   for _ in range(n)], pa.list_(pa.string()))  # fmt: skip
            else:
                values = pa.array([rng.choice(words) for _ in range(n)], pa.string())
            rows = pa.table({**key, "v": values})
            keys = rows.select(by).group_by(by).aggregate([])
            extra = pa.table({k: pa.array([], rows.schema.field(k).type) for k in by})
            if packed:  # a key of no row at all
                extra = pa.table({"k_hosts": pa.array([99 << 32], pa.uint64()), "k_port": pa.array([7], pa.int64())})
            keys = pa.concat_tables([keys, extra])
            got = keys.append_column("v", joined_per_key(keys, rows, "v"))
            want = keys.join(distinct_joined(rows, by, "v"), by, join_type="left outer")
            want = want.set_column(want.schema.get_field_index("v"), "v", pc.fill_null(want.column("v"), ""))
            order = [(k, "ascending") for k in by]
            assert got.sort_by(order).to_pylist() == want.sort_by(order).to_pylist(), (packed, as_list)
