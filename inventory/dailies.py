"""Per-day aggregates: the only thing inventories read.

    daily/servers/date=YYYY-MM-DD/part.parquet
    daily/clients/date=YYYY-MM-DD/part.parquet

Each is a pure function of one day's records (`daily_servers`,
`daily_clients`), keyed by sensor so that a sensor filter stays exact, and
kept for two states: `served` (open TCP, answered UDP) and `closed` (a SYN
answered by RST). A file records the ledger generation of the day it was
built from (Parquet metadata); `refresh` rebuilds exactly the days whose
generation moved, so a crash or a concurrent ingest at worst leaves a day
to be rebuilt by the next query, never a wrong answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ingest.schema import ANSWERED, OPEN, REJECTED, TIMESTAMP
from inventory.networks import ipv4_numbers
from inventory.store_reader import DAILY_DIR, day_generations, days_between, read_day_records

SERVED = "served"
CLOSED = "closed"
SERVERS = "servers"
CLIENTS = "clients"
_GENERATION_KEY = b"synack.generation"
_FORMAT_KEY = b"synack.daily_format"
#: Bumped whenever the daily files' layout changes: older files count as stale.
DAILY_FORMAT = b"4"
_RECORD_COLUMNS = ["ts", "sensor", "proto", "service", "server_reply", "outcome", "server_h", "server_p", "client_h"]

SERVER_KEY = ["sensor", "server_h", "proto", "server_p", "state"]
CLIENT_KEY = ["sensor", "client_h", "server_h", "proto", "server_p", "state"]

#: server_v4/client_v4 of an address that is not IPv4: 255.255.255.255,
#: which is never a server or a client (broadcast), so it can stand for
#: "not IPv4"; such rows sort last and one range test selects them.
NOT_V4 = 2**32 - 1

#: Daily rows are sorted by (state, server_v4) in small row groups, so a
#: query for one state and IPv4 networks skips most of a file unread.
#: Server rows are the ones filtered by network (most of them are outside
#: the monitored ones), so their groups are the smaller.
SERVER_ROW_GROUP = 2048
CLIENT_ROW_GROUP = 16384
DAILY_SERVERS_SCHEMA = pa.schema(
    [
        ("sensor", pa.string()),
        ("server_h", pa.string()),
        ("proto", pa.string()),
        ("server_p", pa.uint16()),
        ("state", pa.string()),
        ("server_v4", pa.uint32()),
        ("first_seen", TIMESTAMP),
        ("last_seen", TIMESTAMP),
        ("connections", pa.int64()),
        ("services", pa.list_(pa.string())),
        ("server_reply", pa.binary()),
        ("clients_v4", pa.list_(pa.uint32())),
        ("clients_text", pa.list_(pa.string())),
    ]
)
#: The columns of a server row without its client sets, for queries that
#: do not count clients.
SERVER_ROW_COLUMNS = [name for name in DAILY_SERVERS_SCHEMA.names if not name.startswith("clients_")]
DAILY_CLIENTS_SCHEMA = pa.schema(
    [
        ("sensor", pa.string()),
        ("client_h", pa.string()),
        ("server_h", pa.string()),
        ("proto", pa.string()),
        ("server_p", pa.uint16()),
        ("state", pa.string()),
        ("server_v4", pa.uint32()),
        ("client_v4", pa.uint32()),
        ("first_seen", TIMESTAMP),
        ("last_seen", TIMESTAMP),
        ("connections", pa.int64()),
    ]
)


def _with_state(records: pa.Table) -> pa.Table:
    """Records that make a server or closed-port row, with a `state` column,
    in time order (so "first" aggregates are the earliest). Key columns
    stay dictionary-encoded (one dictionary per column for the day)."""
    records = records.unify_dictionaries().combine_chunks()
    outcome = records.column("outcome")
    outcome = outcome.cast(outcome.type.value_type) if pa.types.is_dictionary(outcome.type) else outcome
    served = pc.is_in(outcome, pa.array([OPEN, ANSWERED]))
    closed = pc.equal(outcome, REJECTED)
    keep = pc.and_(pc.or_(served, closed), pc.is_valid(records.column("server_h")))
    t = records.filter(keep)
    state = pc.if_else(pc.equal(outcome.filter(keep), REJECTED), CLOSED, SERVED).dictionary_encode()
    t = t.append_column("state", state)
    ts = t.column("ts")
    if len(t) > 1 and not pc.all(pc.greater_equal(ts.slice(1), ts.slice(0, len(t) - 1))).as_py():
        t = t.take(pc.sort_indices(ts))
    return t


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(int64 dictionary indices with -1 for null, dictionary values) of a column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    indices = pc.fill_null(array.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, array.dictionary


def _aggregate(t: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(daily servers, daily clients) of time-ordered state records.

    The key columns are turned into integer codes (one host dictionary for
    servers and clients), so each aggregation hashes one or two int64
    columns instead of six strings: a server key packs host, proto, port,
    state and sensor; a client pair is (server key, client host).
    """
    if len(t) == 0:
        return DAILY_SERVERS_SCHEMA.empty_table(), DAILY_CLIENTS_SCHEMA.empty_table()
    server_idx, server_dict = _codes(t.column("server_h"))
    client_idx, client_dict = _codes(t.column("client_h"))
    hosts = pc.unique(pa.concat_arrays([server_dict.cast(pa.string()), client_dict.cast(pa.string())]))
    s_host = pc.index_in(server_dict, hosts).to_numpy(zero_copy_only=False).astype(np.int64)[server_idx]
    c_host = pc.index_in(client_dict, hosts).to_numpy(zero_copy_only=False).astype(np.int64)[client_idx]
    proto, proto_dict = _codes(t.column("proto"))
    sensor, sensor_dict = _codes(t.column("sensor"))
    state, state_dict = _codes(t.column("state"))
    port = t.column("server_p").to_numpy().astype(np.int64)
    n_proto, n_sensor, n_state = len(proto_dict) + 1, len(sensor_dict) + 1, len(state_dict) + 1
    key = (((s_host * n_proto + proto + 1) * 65536 + port) * n_state + state + 1) * n_sensor + sensor + 1

    host_v4, host_is_v4 = ipv4_numbers(hosts)

    def unpack(k: np.ndarray) -> list[pa.Array]:
        k, sen = np.divmod(k, n_sensor)
        k, sta = np.divmod(k, n_state)
        k, prt = np.divmod(k, 65536)
        host, pro = np.divmod(k, n_proto)
        return [
            _strings(sen - 1, sensor_dict),
            _strings(host, hosts),
            _strings(pro - 1, proto_dict),
            pa.array(prt.astype(np.uint16)),
            _strings(sta - 1, state_dict),
            pa.array(np.where(host_is_v4[host], host_v4[host], NOT_V4).astype(np.uint32)),
        ]

    ts = t.column("ts")
    rows = pa.table({"key": key, "client": c_host, "ts": ts})
    pairs = rows.group_by(["key", "client"]).aggregate([("ts", "min"), ("ts", "max"), ("ts", "count")])
    sensor_col, server_col, proto_col, port_col, state_col, v4_col = unpack(pairs.column("key").to_numpy())
    client = pairs.column("client").to_numpy()
    client_v4 = pa.array(np.where(host_is_v4[client], host_v4[client], NOT_V4).astype(np.uint32))
    daily_clients = pa.table(
        [sensor_col, _strings(client, hosts), server_col, proto_col, port_col, state_col, v4_col, client_v4,
         pairs.column("ts_min"), pairs.column("ts_max"), pairs.column("ts_count").cast(pa.int64())],
        schema=DAILY_CLIENTS_SCHEMA,
    )  # fmt: skip

    by_server = (
        pa.table({"key": key, "ts": ts}).group_by("key").aggregate([("ts", "min"), ("ts", "max"), ("ts", "count")])
    )
    server_key = by_server.column("key").to_numpy()
    daily_servers = pa.table(
        [*unpack(server_key), by_server.column("ts_min"), by_server.column("ts_max"),
         by_server.column("ts_count").cast(pa.int64()), _services(t, key, server_key),
         _first_reply(t, key, server_key), *_client_sets(pairs, host_v4, host_is_v4, hosts, server_key)],
        schema=DAILY_SERVERS_SCHEMA,
    )  # fmt: skip
    return _storage_order(daily_servers), _storage_order(daily_clients)


def _storage_order(table: pa.Table) -> pa.Table:
    """Rows sorted by (state, server_v4): the order row-group statistics prune by."""
    state_codes, state_values = _codes(table.column("state"))
    rank = np.argsort(np.argsort(np.asarray(state_values.to_pylist(), dtype=object)))  # value order of each code
    state = rank[state_codes]
    v4 = table.column("server_v4").to_numpy().astype(np.int64)
    return table.take(pa.array(np.argsort(state * 2**33 + v4, kind="stable")))


def _strings(indices: np.ndarray, values: pa.Array) -> pa.Array:
    """values[indices] as plain strings, null where an index is negative.

    Daily files hold plain strings: Parquet dictionary-encodes them per
    row group (an Arrow dictionary would be written whole into every row
    group), and row-group statistics on them can prune.
    """
    return pc.take(values.cast(pa.string()), pa.array(indices, mask=indices < 0))


def _services(t: pa.Table, key: np.ndarray, server_key: np.ndarray) -> pa.Array:
    """Per server key (in `server_key` order), the sorted distinct Zeek services."""
    service, service_dict = _codes(t.column("service"))
    names = service_dict.cast(pa.string())
    seen = service >= 0
    combos = pa.table({"key": key[seen], "service": service[seen]}).group_by(["key", "service"]).aggregate([])
    combos = combos.append_column("name", pc.take(names, combos.column("service")))
    per_key = combos.sort_by([("name", "ascending")]).group_by("key", use_threads=False).aggregate([("name", "list")])
    position = pc.index_in(pa.array(server_key), per_key.column("key"))
    lists = per_key.column("name_list").combine_chunks().cast(pa.list_(pa.string()))
    return pc.fill_null(pc.take(lists, position), pa.scalar([], pa.list_(pa.string())))


def _client_sets(
    pairs: pa.Table, host_v4: np.ndarray, host_is_v4: np.ndarray, hosts: pa.Array, server_key: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """Per server key, its distinct clients of the day: (IPv4 clients as
    numbers, other clients as text). A range's exact distinct client count
    is then read from the server rows alone."""
    key = pairs.column("key").to_numpy()
    client = pairs.column("client").to_numpy()
    v4 = host_is_v4[client]
    numbers = pa.table({"key": key[v4], "client": host_v4[client[v4]].astype(np.uint32)})
    texts = pa.table({"key": key[~v4], "client": pc.take(hosts, pa.array(client[~v4])).cast(pa.string())})
    return _lists_by_key(numbers, server_key, pa.uint32()), _lists_by_key(texts, server_key, pa.string())


def _lists_by_key(values: pa.Table, server_key: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """The `client` values of `values` gathered into one list per server key (empty when none)."""
    per_key = values.group_by("key", use_threads=False).aggregate([("client", "list")])
    position = pc.index_in(pa.array(server_key), per_key.column("key"))
    lists = per_key.column("client_list").combine_chunks().cast(pa.list_(value_type))
    return pc.fill_null(pc.take(lists, position), pa.scalar([], pa.list_(value_type)))


def _first_reply(t: pa.Table, key: np.ndarray, server_key: np.ndarray) -> pa.Array:
    """Per server key, the earliest non-empty server reply (rows are in time order)."""
    replies = t.column("server_reply").combine_chunks()
    has = np.asarray(pc.fill_null(pc.greater(pc.binary_length(replies), 0), False).to_numpy(zero_copy_only=False))
    rows = np.flatnonzero(has)
    keys, first = np.unique(key[rows], return_index=True)
    position = pc.index_in(pa.array(server_key), pa.array(keys))
    return pc.take(pc.take(replies, pa.array(rows[first])), position)


def daily_servers(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, server_h, proto, server_p, state).

    Columns as DAILY_SERVERS_SCHEMA: first/last seen, connections, the
    distinct Zeek services, and the first server reply of the day.
    """
    return _aggregate(_with_state(records))[0]


def daily_clients(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, client_h, server_h, proto, server_p, state)."""
    return _aggregate(_with_state(records))[1]


def _daily_path(store: Path, kind: str, day: str) -> Path:
    return Path(store) / DAILY_DIR / kind / f"date={day}" / "part.parquet"


def built_generation(store: Path, kind: str, day: str) -> int | None:
    """The ledger generation a daily file was built from, or None if absent."""
    path = _daily_path(store, kind, day)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _file_generation(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _file_generation(path: str, mtime_ns: int, size: int) -> int | None:
    """The generation in one daily file's footer; a file is replaced, never
    rewritten, so (path, mtime, size) names its content for the cache."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None  # unreadable (torn by a crash): rebuilt like a stale day
    if meta.get(_FORMAT_KEY) != DAILY_FORMAT:
        return None
    value = meta.get(_GENERATION_KEY)
    return int(value) if value is not None else None


def stale_days(store: Path) -> list[str]:
    """Days whose records changed since their dailies were built."""
    out = []
    for day, gen in sorted(day_generations(store).items()):
        if any(built_generation(store, kind, day) != gen for kind in (SERVERS, CLIENTS)):
            out.append(day)
    return out


def _write_atomic(table: pa.Table, path: Path, generation: int, row_group_size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({_GENERATION_KEY: str(generation).encode(), _FORMAT_KEY: DAILY_FORMAT})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    dictionary = [f.name for f in table.schema if pa.types.is_string(f.type)]
    with open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd", use_dictionary=dictionary or False, row_group_size=row_group_size,
                       write_statistics=["sensor", "state", "server_v4", "first_seen"])  # fmt: skip
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rebuild_day(store: Path, day: str, generation: int) -> None:
    """Recompute both dailies of `day` from its records and replace them atomically."""
    servers, clients = _aggregate(_with_state(read_day_records(store, day, _RECORD_COLUMNS)))
    _write_atomic(servers, _daily_path(store, SERVERS, day), generation, SERVER_ROW_GROUP)
    _write_atomic(clients, _daily_path(store, CLIENTS, day), generation, CLIENT_ROW_GROUP)


def refresh(store: Path | str, workers: int = 2) -> list[str]:
    """Rebuild the dailies of every stale day (on `workers` threads); return those days.

    Safe to run at any time and concurrently with an ingest: each file is
    replaced atomically and names the generation it reflects.
    """
    store = Path(store)
    generations = day_generations(store)
    days = stale_days(store)
    if len(days) > 1 and workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="dailies") as pool:
            list(pool.map(lambda day: rebuild_day(store, day, generations[day]), days))
    else:
        for day in days:
            rebuild_day(store, day, generations[day])
    return days


def read_dailies(
    store: Path | str,
    kind: str,
    days: list[str] | None = None,
    where: pc.Expression | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The `columns` (all when None) of the daily rows of `kind` ("servers"
    or "clients") for `days` (all when None) that satisfy `where`,
    dictionaries unified."""
    schema = DAILY_SERVERS_SCHEMA if kind == SERVERS else DAILY_CLIENTS_SCHEMA
    base = Path(store) / DAILY_DIR / kind
    if days is None:
        files = sorted(base.glob("date=*/part.parquet")) if base.exists() else []
    else:
        files = [p for p in (_daily_path(Path(store), kind, d) for d in days) if p.exists()]
    if not files:
        empty = schema.empty_table()
        return empty.select(columns) if columns is not None else empty
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    dataset = _dataset(stamp, kind)
    return dataset.to_table(columns=columns, filter=where).unify_dictionaries()


@functools.lru_cache(maxsize=8)
def _dataset(files: tuple[tuple[str, int], ...], kind: str) -> ds.Dataset:
    """A dataset over daily files, kept while none of them changes (files
    are replaced, never rewritten, so a new mtime means a new file): the
    scans of one query read each footer once."""
    schema = DAILY_SERVERS_SCHEMA if kind == SERVERS else DAILY_CLIENTS_SCHEMA
    return ds.dataset([path for path, _ in files], format="parquet", schema=schema)


def rows_in_range(
    store: Path | str,
    kind: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    where: pc.Expression | None = None,
    columns: list[str] | None = None,
    refresh_stale: bool = True,
) -> pa.Table:
    """Daily rows of `kind` covering [start, end).

    Whole days come from the daily files (stale ones are rebuilt first when
    `refresh_stale`, else computed in memory); a day only partly inside the
    range is aggregated on the fly from its records filtered by time, with
    the same function, so any range is exact.
    """
    store = Path(store)
    generations = day_generations(store)
    if refresh_stale:
        try:
            refresh(store)
        except OSError:
            refresh_stale = False  # a read-only store: compute stale days in memory
    aggregate = daily_servers if kind == SERVERS else daily_clients
    whole: list[str] = []
    parts: list[pa.Table] = []
    for day in days_between(list(generations), start, end):
        day_start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        day_end = day_start + dt.timedelta(days=1)
        partial = (start is not None and start > day_start) or (end is not None and end < day_end)
        stale = not refresh_stale and built_generation(store, kind, day) != generations[day]
        if partial or stale:
            records = read_day_records(store, day, _RECORD_COLUMNS)
            if partial:
                records = records.filter(_between(records.column("ts"), start, end))
            part = aggregate(records)
            part = part.filter(where) if where is not None else part
            parts.append(part.select(columns) if columns is not None else part)
        else:
            whole.append(day)
    parts.insert(0, read_dailies(store, kind, whole, where, columns))
    return pa.concat_tables(parts).unify_dictionaries()


def _between(ts: pa.ChunkedArray, start: dt.datetime | None, end: dt.datetime | None) -> pa.ChunkedArray:
    mask = pc.is_valid(ts)
    if start is not None:
        mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(start, TIMESTAMP)))
    if end is not None:
        mask = pc.and_(mask, pc.less(ts, pa.scalar(end, TIMESTAMP)))
    return mask
