"""Aggregates: any chunking, commit order or merge order gives the same answer.

The core property of ingest.aggregates: aggregates of disjoint record sets
merge (in any grouping and order) to exactly the aggregate of their union.
Then the same through the store: logs cut into files, chunks and commit
orders, tiered compactions and sub-day ranges all answer like one ingest of
the records in the range.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.conn_gen import conn_table, header
from synack.ingest import partials
from synack.ingest.aggregates import aggregate_day, key_order, merge_clients, merge_servers
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.schema import CORE_SCHEMA, TIMESTAMP
from tests import shorthands as inventory

UTC = dt.UTC
START = 1795000000.0  # 2026-11-18 09:46:40 UTC

HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.10", "10.1.0.5", "fd00::1", "fd00::a", "93.184.216.34"]
REPLIES = [None, b"", b"SSH-2.0-x\r\n", b"HTTP/1.1 200 OK", b"\x00\xff", b"HTTP/1.1 200 OK"]


def _records(draw_rows: list[tuple[int, int, int, int, int, int, int, int]]) -> pa.Table:
    """Normalized records (the columns aggregation reads) from small integer draws."""
    outcomes = ["open", "answered", "rejected", "unanswered", "midstream", "none"]
    cols: dict[str, list[object]] = {k: [] for k in
                                     ("ts", "sensor", "proto", "service", "server_reply", "outcome", "server_h",
                                      "server_p", "client_h")}  # fmt: skip
    for ts, sensor, server, client, port, outcome, reply, service in draw_rows:
        cols["ts"].append(dt.datetime(2026, 11, 18, tzinfo=UTC) + dt.timedelta(seconds=ts))
        cols["sensor"].append(["s1", "s2", None][sensor])
        cols["proto"].append("udp" if outcome == 1 else "tcp")
        cols["service"].append([None, "http", "ssh", "dns"][service])
        cols["server_reply"].append(REPLIES[reply])
        cols["outcome"].append(outcomes[outcome])
        cols["server_h"].append(HOSTS[server] if outcome < 5 else None)
        cols["server_p"].append([22, 80, 53, 443][port] if outcome < 5 else None)
        cols["client_h"].append(HOSTS[client] if outcome < 5 else None)
    schema = pa.schema([CORE_SCHEMA.field(c) for c in cols])
    return pa.table({k: pa.array(v).cast(schema.field(k).type) if k != "ts" else pa.array(v, TIMESTAMP)
                     for k, v in cols.items()}, schema=schema)  # fmt: skip


row = st.tuples(
    st.integers(0, 50), st.integers(0, 2), st.integers(0, 6), st.integers(0, 6), st.integers(0, 3),
    st.integers(0, 5), st.integers(0, 5), st.integers(0, 3),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, min_size=0, max_size=60), seed=st.integers(0, 10**6))
def test_merged_chunks_equal_the_whole(rows: list, seed: int) -> None:
    """Random records cut into random chunks, aggregated, merged in random
    groups and orders: exactly the aggregate of all of them (ties on time
    included: times are drawn from 51 values)."""
    records = _records(rows)
    whole_servers, whole_clients = aggregate_day(records)
    rng = random.Random(seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(records)), min(rng.randint(0, 5), max(len(records) - 1, 0))))
    pieces = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)])]
    parts = [aggregate_day(records.take(pa.array(p, pa.int64()))) for p in pieces if p]
    rng.shuffle(parts)
    half = len(parts) // 2
    for merge, index, whole in ((merge_servers, 0, whole_servers), (merge_clients, 1, whole_clients)):
        flat = merge([p[index] for p in parts])
        nested = merge([merge([p[index] for p in parts[:half]]), merge([p[index] for p in parts[half:]])])
        expected = merge([whole])
        assert flat.equals(expected) and nested.equals(expected)
        assert len(expected) == len(whole)  # merging one aggregate only reorders it
        assert _as_sets(expected) == _as_sets(whole)


def _as_sets(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(map(repr, (tuple(r.values()) for r in table.to_pylist())))


def test_the_first_reply_is_the_earliest_then_the_smallest() -> None:
    rows = [(5, 0, 0, 1, 0, 0, 2, 0), (5, 0, 0, 2, 0, 0, 4, 0), (9, 0, 0, 3, 0, 0, 3, 0), (3, 0, 0, 1, 0, 0, 0, 0)]
    servers = merge_servers([aggregate_day(_records(rows[i : i + 1]))[0] for i in range(4)])
    assert servers.column("server_reply").to_pylist() == [b"\x00\xff"]  # ts 5: two replies, the smaller wins
    assert servers.column("reply_ts").to_pylist()[0] == dt.datetime(2026, 11, 18, 0, 0, 5, tzinfo=UTC)
    assert servers.column("first_seen").to_pylist()[0] == dt.datetime(2026, 11, 18, 0, 0, 3, tzinfo=UTC)


# -- through the store ---------------------------------------------------------------


def _write_log(path: Path, table: pa.Table) -> Path:
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, options)
    path.write_bytes(header() + sink.getvalue().to_pybytes() + b"#close\t2026-11-21-11-00-00\n")
    return path


def _generated(rows: int, seed: int) -> pa.Table:
    """Generated conn.log rows over two days, from two sensors."""
    table = conn_table(rows, seed, start=START, span=1.5 * 86400)
    sensors = np.where(np.random.default_rng(seed).random(rows) < 0.3, "edge-2", "edge-1")
    return table.set_column(table.schema.get_field_index("sensor"), "sensor", pa.array(sensors))


def _answers(store: Path, since: object = None, until: object = None) -> dict[str, pd.DataFrame]:
    return {
        "servers": inventory.servers(store, since, until, nets="all"),
        "closed": inventory.closed(store, since, until, nets="all"),
        "clients": inventory.clients(store, since, until, nets="all"),
        "pairs": inventory.client_pairs(store, since, until, nets="all"),
    }


def _same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame], ranged: bool = False) -> None:
    """The answers agree; `ranged`: only what the range holds (first_seen and
    `new` are all-time sightings, which a store of just the range's records lacks)."""
    for name in a:
        left, right = a[name], b[name]
        if ranged:
            left, right = (df.drop(columns=[c for c in ("first_seen", "new") if c in df]) for df in (left, right))
        pd.testing.assert_frame_equal(left, right, obj=name)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), files=st.integers(1, 4), chunk=st.sampled_from([600, 2500, 1 << 20]),
       edges=st.tuples(st.floats(0.05, 0.7), st.floats(0.05, 0.7)),
       large=st.sampled_from([partials.LARGE_CLIENT_ROWS, 1, 40]))  # fmt: skip
def test_any_cut_and_commit_order_answers_like_one_ingest(
    tmp_path_factory: pytest.TempPathFactory, seed: int, files: int, chunk: int, edges: tuple[float, float],
    large: int,
) -> None:  # fmt: skip
    """`large` (LARGE_CLIENT_ROWS) small makes the tiered merges servers
    merges (client rows left as they are), or a mix of both kinds."""
    with mock.patch.object(partials, "LARGE_CLIENT_ROWS", large):
        _cut_and_commit(tmp_path_factory.mktemp("cut"), seed, files, chunk, edges)


def _cut_and_commit(folder: Path, seed: int, files: int, chunk: int, edges: tuple[float, float]) -> None:
    table = _generated(600, seed)
    one = folder / "one"
    ingest_paths([_write_log(folder / "all.log", table)], one)
    bounds = np.linspace(0, len(table), files + 1).astype(int)
    logs = [_write_log(folder / f"part{i}.log", table.slice(a, b - a)) for i, (a, b) in
            enumerate(zip(bounds[:-1], bounds[1:]))]  # fmt: skip
    random.Random(seed).shuffle(logs)
    cut = folder / "cut"
    for log in logs:  # one commit order, chunked finely: many partials, tiered merges
        ingest_paths([log], cut, chunk_bytes=chunk)
    _same(_answers(one), _answers(cut))
    # A range cutting both days: the partials inside it, and the records of
    # those straddling its edges, answer like a store of just those records.
    since = dt.datetime.fromtimestamp(START, UTC) + dt.timedelta(days=edges[0])
    until = since + dt.timedelta(days=edges[1] + 0.3)
    ts = np.array([float(v) for v in table.column("ts").to_pylist()])
    inside = np.flatnonzero((ts >= since.timestamp()) & (ts < until.timestamp()))
    only = folder / "only"
    ingest_paths([_write_log(folder / "inside.log", table.take(pa.array(inside)))], only)
    _same(_answers(only), _answers(cut, since, until), ranged=True)
    _same(_answers(only), _answers(one, since, until), ranged=True)
    _same(_answers(one, since, until), _answers(cut, since, until))  # all-time sightings agree too


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2**40 - 1), st.integers(0, 4)), max_size=60))
def test_key_order_sorts_by_the_keys_packed_or_not(rows: list[tuple[int, int, int]]) -> None:
    """Keys whose spans multiply below 2**63 are packed into one argsort,
    larger ones lexsorted: both orders sort the rows by the keys."""
    keys = tuple(np.array([r[i] for r in rows], dtype=np.int64) for i in range(3))
    wanted = sorted(rows)
    for spans in ((7, 2**40, 5), (7, 2**60, 5)):  # the second overflows: lexsort
        order = key_order(keys, spans)
        assert [tuple(int(k[i]) for k in keys) for i in order] == wanted
