"""Aggregates of connection records, and how aggregates merge.

`aggregate_day` turns one day's connection records (a chunk's, or the
whole day's) into server rows (one per sensor, server, proto, port and
state, with its distinct clients) and client rows (one per client and
server port). `merge_servers` and `merge_clients` merge aggregates of
disjoint record sets into the aggregate of their union (min, max, sum, set
union; the earliest reply). Both are pure functions of the *set* of
records: no order, chunking or merge order changes a row. Ties are broken
by value, never by position: the first reply is the one with the earliest
time, then the smallest bytes.

`inventory` reads these rows (the schemas and column names are part of
ingest's published contract); ingest computes them inside its commits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.addresses import ipv4_numbers
from synack.ingest.arrays import one_array
from synack.ingest.schema import ANSWERED, OPEN, REJECTED, TIMESTAMP
from synack.ingest.schema import INFERRED as INFERRED_OUTCOME

SERVED = "served"
CLOSED = "closed"
#: Served, but the sensor never saw this key's SYN-ACK that day (outcome
#: `inferred`): counted as a server unless a query is strict.
INFERRED = "inferred"
#: The states a server port is counted from; strict queries take SERVED only.
SERVING = (INFERRED, SERVED)
#: The record columns a day's aggregation reads.
RECORD_COLUMNS = ["ts", "sensor", "proto", "service", "server_reply", "outcome", "server_h", "server_p", "client_h"]

#: server_v4/client_v4 of an address that is not IPv4: 255.255.255.255,
#: which is never a server or a client (broadcast), so it can stand for
#: "not IPv4"; such rows sort last and one range test selects them.
NOT_V4 = 2**32 - 1

#: Daily rows are sorted by (state, server_v4): the order row-group
#: statistics prune by.
_TEXT, _PORT, _V4 = pa.string(), pa.uint16(), pa.uint32()
#: What every daily row carries beside its key.
_SEEN = [("first_seen", TIMESTAMP), ("last_seen", TIMESTAMP), ("connections", pa.int64())]
DAILY_SERVERS_SCHEMA = pa.schema(
    [("sensor", _TEXT), ("server_h", _TEXT), ("proto", _TEXT), ("server_p", _PORT), ("state", _TEXT),
     ("server_v4", _V4), *_SEEN, ("services", pa.list_(_TEXT)), ("server_reply", pa.binary()),
     ("reply_ts", TIMESTAMP), ("clients_v4", pa.list_(_V4)), ("clients_text", pa.list_(_TEXT))]
)  # fmt: skip
#: The columns of a server row without its client sets, for queries that
#: do not count clients.
SERVER_ROW_COLUMNS = [name for name in DAILY_SERVERS_SCHEMA.names if not name.startswith("clients_")]
#: A client row's services are Zeek's detected services of that client's
#: connections (null in a partial written before they were kept: empty in
#: answers until `synack rebuild`).
DAILY_CLIENTS_SCHEMA = pa.schema(
    [("sensor", _TEXT), ("client_h", _TEXT), ("server_h", _TEXT), ("proto", _TEXT), ("server_p", _PORT),
     ("state", _TEXT), ("server_v4", _V4), ("client_v4", _V4), *_SEEN, ("services", pa.list_(_TEXT))]
)  # fmt: skip


#: The two kinds of aggregate: per server port, and per client and server pair.
SERVERS = "servers"
CLIENTS = "clients"


def schema_of(kind: str) -> pa.Schema:
    """The schema of a `kind` (SERVERS or CLIENTS) aggregate file."""
    return DAILY_SERVERS_SCHEMA if kind == SERVERS else DAILY_CLIENTS_SCHEMA


#: State codes; code order is value order, which storage sorts by.
STATES = pa.array([CLOSED, INFERRED, SERVED])


def _state_rows(records: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """(the records with one dictionary per column, the indices of those
    that make a server or closed-port row, the state code of each)."""
    if any(c.num_chunks > 1 for c in records.columns):  # combine_chunks copies even a single chunk
        records = records.unify_dictionaries().combine_chunks()
    outcome = _plain(records.column("outcome"))
    served = _mask(pc.is_in(outcome, pa.array([OPEN, ANSWERED])))
    inferred = _mask(pc.equal(outcome, INFERRED_OUTCOME))
    closed = _mask(pc.equal(outcome, REJECTED))
    placed = _mask(pc.is_valid(records.column("server_h"))) & _mask(pc.is_valid(records.column("ts")))
    rows = np.flatnonzero((served | inferred | closed) & placed)
    return records, rows, (2 * served[rows] + inferred[rows]).astype(np.int64)


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def dictionary_codes(column: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """(int64 dictionary indices of `rows`, -1 for null; dictionary values) of a column."""
    array = one_array(column)
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    indices = array.indices if array.null_count == 0 else pc.fill_null(array.indices, -1)
    return indices.to_numpy(zero_copy_only=False).astype(np.int64)[rows], array.dictionary


def aggregate_day(records: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(daily servers, daily clients) of one day's records.

    The key columns are turned into integer codes, so each aggregation
    hashes one or two int64 columns instead of six strings: a server key
    packs state, server host, proto, port and sensor; a client pair is
    (server key, client host). Hosts are numbered in address order and the
    state is the key's most significant part, so sorting by key gives the
    storage order, (state, server_v4), and keeps each key's rows together.
    """
    records, rows, state = _state_rows(records)
    if len(rows) == 0:
        return DAILY_SERVERS_SCHEMA.empty_table(), DAILY_CLIENTS_SCHEMA.empty_table()
    server_idx, server_dict = dictionary_codes(records.column("server_h"), rows)
    client_idx, client_dict = dictionary_codes(records.column("client_h"), rows)
    hosts, host_v4 = _hosts_in_address_order(server_dict, client_dict)
    s_host = pc.index_in(server_dict, hosts).to_numpy(zero_copy_only=False).astype(np.int64)[server_idx]
    c_host = pc.index_in(client_dict, hosts).to_numpy(zero_copy_only=False).astype(np.int64)[client_idx]
    proto, proto_dict = dictionary_codes(records.column("proto"), rows)
    sensor, sensor_dict = dictionary_codes(records.column("sensor"), rows)
    port = records.column("server_p").to_numpy()[rows].astype(np.int64)
    n_host, n_proto, n_sensor = len(hosts), len(proto_dict) + 1, len(sensor_dict) + 1
    key = (((state * n_host + s_host) * n_proto + proto + 1) * 65536 + port) * n_sensor + sensor + 1

    def key_columns(k: np.ndarray) -> list[pa.Array]:
        k, sen = np.divmod(k, n_sensor)
        k, prt = np.divmod(k, 65536)
        k, pro = np.divmod(k, n_proto)
        sta, host = np.divmod(k, n_host)
        return [
            _strings(sen - 1, sensor_dict),
            _strings(host, hosts),
            _strings(pro - 1, proto_dict),
            pa.array(prt.astype(np.uint16)),
            _strings(sta, STATES),
            pa.array(host_v4[host]),
        ]

    when = records.column("ts").take(pa.array(rows)).cast(pa.int64()).to_numpy()
    ones = np.ones(len(when), dtype=np.int64)
    key_span = len(STATES) * n_host * n_proto * 65536 * n_sensor
    (pair_key, client), pair_times, record_pair = _runs((key, c_host), (key_span, n_host), (when, when, ones))
    sensor_col, *server_cols = key_columns(pair_key)
    # Services as (group * n + rank of the name) codes: distinct per pair, then per server from those.
    seen, rank, by_rank = _service_ranks(dictionary_codes(records.column("service"), rows))
    n = max(len(by_rank), 1)
    pair_services = sorted_distinct(record_pair[seen] * n + rank)
    daily_clients = pa.table(
        [sensor_col, _strings(client, hosts), *server_cols, pa.array(host_v4[client]), *_seen(pair_times),
         _name_lists(pair_services, n, by_rank, len(pair_key))],
        schema=DAILY_CLIENTS_SCHEMA,
    )  # fmt: skip

    (server_key,), server_times, pair_server = _runs((pair_key,), (key_span,), pair_times)
    server_services = sorted_distinct(pair_server[pair_services // n] * n + pair_services % n)
    is_v4 = host_v4[client] != NOT_V4
    daily_servers = pa.table(
        [*key_columns(server_key), *_seen(server_times), _name_lists(server_services, n, by_rank, len(server_key)),
         *_first_reply(records, rows, when, pair_server[record_pair], len(server_key)),
         _lists(pair_key[is_v4], pa.array(host_v4[client[is_v4]]), server_key),
         _lists(pair_key[~is_v4], _strings(client[~is_v4], hosts), server_key)],
        schema=DAILY_SERVERS_SCHEMA,
    )  # fmt: skip
    return daily_servers, daily_clients


_Times = tuple[np.ndarray, np.ndarray, np.ndarray]


def _runs(keys: tuple[np.ndarray, ...], spans: tuple[int, ...],
          times: _Times) -> tuple[list[np.ndarray], _Times, np.ndarray]:  # fmt: skip
    """Group rows by `keys` (int64 arrays in [0, span), most significant
    first): the distinct keys in ascending order; per key the earliest first
    seen, the latest last seen (µs) and the sum of connections of `times`;
    and each row's group (the index of its key).

    A sort and reduceat instead of a hash aggregation, since the rows are
    wanted sorted anyway (storage order, and runs for the client lists).
    """
    order = key_order(keys, spans)
    ordered = [k[order] for k in keys]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in ordered])
    at = np.flatnonzero(starts)
    first, last, count = (t[order] for t in times)
    merged = (np.minimum.reduceat(first, at), np.maximum.reduceat(last, at), np.add.reduceat(count, at))
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    return [k[at] for k in ordered], merged, group


def key_order(keys: tuple[np.ndarray, ...], spans: tuple[int, ...]) -> np.ndarray:
    """The permutation that sorts rows by `keys` (non-negative int64 arrays,
    each below its span, most significant first); rows with equal keys in
    any order. One argsort of the keys packed into one int64 when their
    spans allow (several times faster than np.lexsort), else a lexsort."""
    if len(keys) == 1:
        return np.argsort(keys[0])
    if math.prod(spans) < 2**63:
        packed = keys[0]
        for k, span in zip(keys[1:], spans[1:]):
            packed = packed * span + k
        return np.argsort(packed)
    return np.lexsort(keys[::-1])


def _seen(times: _Times) -> list[pa.Array]:
    """The first_seen, last_seen and connections columns of `times`."""
    first, last, count = times
    return [pa.array(first).cast(TIMESTAMP), pa.array(last).cast(TIMESTAMP), pa.array(count)]


def _hosts_in_address_order(*dictionaries: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(the distinct addresses of `dictionaries`, IPv4 ones first in
    numeric order, then the others in text order; their uint32 value,
    NOT_V4 for the others). The order does not depend on the input's."""
    hosts = pc.unique(pa.concat_arrays([d.cast(pa.string()) for d in dictionaries]))
    numbers, is_v4 = ipv4_numbers(hosts)
    v4_rows, other_rows = np.flatnonzero(is_v4), np.flatnonzero(~is_v4)
    order = np.concatenate(
        [
            v4_rows[np.argsort(numbers[v4_rows], kind="stable")],
            other_rows[pc.sort_indices(hosts.take(pa.array(other_rows))).to_numpy()],
        ]
    )
    return hosts.take(pa.array(order)), np.where(is_v4, numbers, NOT_V4).astype(np.uint32)[order]


def _strings(indices: np.ndarray, values: pa.Array) -> pa.Array:
    """values[indices] as plain strings, null where an index is negative.

    Daily files hold plain strings (an Arrow dictionary would be written
    whole into every row group), and row-group statistics on them can prune.
    """
    return pc.take(values.cast(pa.string()), pa.array(indices, mask=indices < 0))


def _lists(key: np.ndarray, values: pa.Array, server_key: np.ndarray) -> pa.Array:
    """`values` gathered into one list per entry of `server_key` (empty where
    none). Both key arrays are sorted and every `key` is in `server_key`."""
    offsets = np.append(np.searchsorted(key, server_key), len(key)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _service_ranks(service: tuple[np.ndarray, pa.Array]) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Of the records' services (codes, dictionary): which records have one,
    the rank of its name among the names, and the names in rank order."""
    codes, dictionary = service
    names = dictionary.cast(pa.string())
    seen = codes >= 0
    rank = pc.rank(names, sort_keys="ascending", tiebreaker="min").to_numpy().astype(np.int64) - 1
    return seen, rank[codes[seen]], pc.take(names, pc.sort_indices(names))


def _name_lists(combined: np.ndarray, n: int, by_rank: pa.Array, groups: int) -> pa.Array:
    """Per group (0 to `groups` - 1), its names: `combined` holds sorted,
    distinct group * n + rank codes, `by_rank` the names in rank order."""
    return _lists(combined // n, pc.take(by_rank, pa.array(combined % n)), np.arange(groups))


def _first_reply(
    records: pa.Table, rows: np.ndarray, when: np.ndarray, server: np.ndarray, servers: int
) -> tuple[pa.Array, pa.Array]:
    """Per server (0 to `servers` - 1; `server` is each record's), the
    non-empty server reply of its earliest connection (the smallest bytes
    on a tie) and that connection's time."""
    replies = one_array(records.column("server_reply"))
    length = pc.fill_null(pc.binary_length(replies), 0).to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(length[rows] > 0)
    return _earliest_replies(server[candidates], when[candidates], pc.take(replies, pa.array(rows[candidates])),
                             servers)  # fmt: skip


def daily_servers(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, server_h, proto, server_p, state).

    Columns as DAILY_SERVERS_SCHEMA: first/last seen, connections, the
    distinct Zeek services, the first server reply of the day, and the
    day's distinct clients of the server.
    """
    return aggregate_day(records)[0]


def daily_clients(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, client_h, server_h, proto, server_p, state)."""
    return aggregate_day(records)[1]


#: The columns that identify a row, in storage order (state and server
#: first: the order row-group statistics prune by).
SERVER_KEY = ["state", "server_v4", "server_h", "proto", "server_p", "sensor"]
CLIENT_KEY = ["state", "server_v4", "server_h", "proto", "server_p", "client_v4", "client_h", "sensor"]


def merge_servers(tables: list[pa.Table]) -> pa.Table:
    """The server aggregate of the union of the record sets behind `tables`
    (server aggregates of disjoint record sets), one row per key, sorted by
    SERVER_KEY, lists sorted: the same table whatever the order or grouping
    of `tables`."""
    runs = _key_runs(tables, DAILY_SERVERS_SCHEMA, SERVER_KEY)
    if not runs.count:
        return DAILY_SERVERS_SCHEMA.empty_table()
    rows, group = runs.rows, runs.group
    has = _mask(pc.is_valid(rows.column("reply_ts")))
    when = rows.column("reply_ts").filter(pa.array(has)).cast(pa.int64()).to_numpy()
    reply, reply_ts = _earliest_replies(group[has], when, rows.column("server_reply").filter(pa.array(has)),
                                        runs.count)  # fmt: skip
    columns = {
        **runs.keys(),
        **runs.merged_times(),
        "services": _distinct_lists(rows.column("services"), group, runs.count),
        "server_reply": reply,
        "reply_ts": reply_ts,
        "clients_v4": _distinct_lists(rows.column("clients_v4"), group, runs.count),
        "clients_text": _distinct_lists(rows.column("clients_text"), group, runs.count),
    }
    return pa.table([columns[name] for name in DAILY_SERVERS_SCHEMA.names], schema=DAILY_SERVERS_SCHEMA)


def merge_clients(tables: list[pa.Table]) -> pa.Table:
    """The client aggregate of the union of the record sets behind `tables`,
    one row per key, sorted by CLIENT_KEY (see merge_servers)."""
    runs = _key_runs(tables, DAILY_CLIENTS_SCHEMA, CLIENT_KEY)
    if not runs.count:
        return DAILY_CLIENTS_SCHEMA.empty_table()
    columns = {
        **runs.keys(),
        **runs.merged_times(),
        "services": _distinct_lists(runs.rows.column("services"), runs.group, runs.count),
    }
    return pa.table([columns[name] for name in DAILY_CLIENTS_SCHEMA.names], schema=DAILY_CLIENTS_SCHEMA)


def merger(kind: str) -> Callable[[list[pa.Table]], pa.Table]:
    """The merge of `kind` (SERVERS or CLIENTS) aggregates: merge_servers or merge_clients."""
    return merge_servers if kind == SERVERS else merge_clients


@dataclass(frozen=True)
class _KeyRuns:
    """The rows of several aggregates grouped by key without moving them:
    `order` sorts them by key, `starts` are the sorted positions where each
    key's run begins, `group` is each row's run (in key order); `coded`
    holds the text key columns as (each row's code, the values coded)."""

    rows: pa.Table
    key: list[str]
    order: np.ndarray
    starts: np.ndarray
    group: np.ndarray
    coded: dict[str, tuple[np.ndarray, pa.Array]]

    @property
    def count(self) -> int:
        return len(self.starts)

    def keys(self) -> dict[str, pa.Array]:
        """The key columns, one value per run, in key order (text ones
        decoded from their codes: no gather over the rows' strings)."""
        first = self.order[self.starts]
        columns = {}
        for name in self.key:
            if name in self.coded:
                codes, values = self.coded[name]
                picked = codes[first]
                columns[name] = _strings(np.where(picked < len(values), picked, -1), values)
            else:
                columns[name] = self.rows.column(name).take(pa.array(first))
        return columns

    def merged_times(self) -> dict[str, pa.Array]:
        """first_seen (min), last_seen (max) and connections (sum) of each run."""
        first, last, count = (
            self.rows.column(name).cast(pa.int64()).to_numpy()[self.order]
            for name in ("first_seen", "last_seen", "connections")
        )
        at = self.starts
        merged = (np.minimum.reduceat(first, at), np.maximum.reduceat(last, at), np.add.reduceat(count, at))
        return dict(zip(["first_seen", "last_seen", "connections"], _seen(merged)))


def _key_runs(tables: list[pa.Table], schema: pa.Schema, key: list[str]) -> _KeyRuns:
    """The rows of `tables` (as `schema`) grouped by `key` (SERVER_KEY or
    CLIENT_KEY). The key columns become integer codes in value order, as in
    aggregate_day (hosts in address order, so server_v4 and client_v4 need
    no code of their own; nulls last, as Arrow sorts them), and one lexsort
    of two int64 keys orders the rows; the other columns (lists, replies)
    are read in place through `group`."""
    parts = [t.select(schema.names).cast(schema) for t in tables if len(t)]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return _KeyRuns(schema.empty_table(), key, empty, empty, empty, {})
    rows = pa.concat_tables(parts)  # chunked: no copy of the inputs
    host_columns = [name for name in ("server_h", "client_h") if name in key]
    hosts, _ = _hosts_in_address_order(*(pc.unique(rows.column(name)) for name in host_columns))

    coded: dict[str, tuple[np.ndarray, pa.Array]] = {}

    def code(name: str, values: pa.Array) -> tuple[np.ndarray, int]:
        """(each row's rank among `values`, null rows after all of them; how many codes)."""
        found = pc.index_in(rows.column(name), value_set=values)
        coded[name] = (pc.fill_null(found, len(values)).to_numpy().astype(np.int64), values)
        return coded[name][0], len(values) + 1

    server, n_host = code("server_h", hosts)
    state, n_state = code("state", STATES)
    proto, n_proto = code("proto", _in_order(rows.column("proto")))
    sensor, n_sensor = code("sensor", _in_order(rows.column("sensor")))
    port = pc.fill_null(rows.column("server_p").cast(pa.int64()), 65536).to_numpy()
    major = (((state * n_host + server) * n_proto + proto) * 65537) + port
    minor, minor_span = sensor, n_sensor
    if "client_h" in key:
        client, _ = code("client_h", hosts)
        minor, minor_span = client * n_sensor + sensor, n_host * n_sensor
    order = key_order((major, minor), (n_state * n_host * n_proto * 65537, minor_span))
    major, minor = major[order], minor[order]
    begins = np.ones(len(order), dtype=bool)
    begins[1:] = (major[1:] != major[:-1]) | (minor[1:] != minor[:-1])
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(begins) - 1
    return _KeyRuns(rows, key, order, np.flatnonzero(begins), group, coded)


def _in_order(column: pa.ChunkedArray) -> pa.Array:
    """The distinct non-null values of a text column, ascending."""
    values = pc.drop_null(pc.unique(column))
    return values.take(pc.sort_indices(values))


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array, ascending: np.unique's
    answer by a sort and a comparison (np.unique hashes first, which is
    several times slower on arrays of this size)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def found_in(ordered: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(whether each of `values` is in `ordered`, an ascending array; each
    one's position in `ordered`, meaningful where it is found)."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=np.int64)
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return np.asarray(ordered[at] == values), at


def _distinct_lists(lists: pa.ChunkedArray, group: np.ndarray, groups: int) -> pa.Array:
    """Per run, the sorted distinct values of the list column `lists`."""
    values = one_array(lists)
    flat = pc.list_flatten(values)
    owner = group[pc.list_parent_indices(values).to_numpy()]
    if pa.types.is_integer(flat.type):
        combined = sorted_distinct((owner.astype(np.int64) << 32) | flat.to_numpy().astype(np.int64))
        owners, items = combined >> 32, pa.array((combined & 0xFFFFFFFF).astype(np.uint32))
    else:
        encoded = flat.dictionary_encode()
        names = encoded.dictionary
        rank = pc.rank(names, sort_keys="ascending").to_numpy().astype(np.int64) - 1
        n = max(len(names), 1)
        combined = sorted_distinct(owner.astype(np.int64) * n + rank[encoded.indices.to_numpy()])
        by_rank = pc.take(names, pc.sort_indices(names))
        owners, items = combined // n, pc.take(by_rank, pa.array(combined % n))
    offsets = np.searchsorted(owners, np.arange(groups + 1)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items)


def _earliest_replies(group: np.ndarray, when: np.ndarray, replies: pa.Array,
                      groups: int) -> tuple[pa.Array, pa.Array]:  # fmt: skip
    """Per group (0 .. groups - 1), the reply of its earliest candidate (`when`,
    µs; the smallest bytes on a tie) and that time; null for a group without
    candidates. `group`, `when` and `replies` give one candidate each: the one
    rule behind the first reply of a chunk and of a merge."""
    earliest = np.full(groups, np.iinfo(np.int64).max)
    np.minimum.at(earliest, group, when)
    won = when == earliest[group]
    tied = pa.table({"group": pa.array(group[won], pa.int64()), "reply": replies.filter(pa.array(won))})
    best = tied.group_by("group", use_threads=False).aggregate([("reply", "min")])
    position = np.full(groups, -1, dtype=np.int64)
    position[best.column("group").to_numpy()] = np.arange(len(best))
    reply = pc.take(best.column("reply_min"), pa.array(position, mask=position < 0)).combine_chunks()
    has = earliest < np.iinfo(np.int64).max
    return reply.cast(pa.binary()), pa.array(earliest, mask=~has).cast(TIMESTAMP)
