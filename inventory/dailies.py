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
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ingest.schema import ANSWERED, OPEN, REJECTED, TIMESTAMP
from ingest.store import write_parquet_synced
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


#: State codes; code order is value order, which storage sorts by.
STATES = pa.array([CLOSED, SERVED])


def _state_rows(records: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """(the records with one dictionary per column, the indices of those
    that make a server or closed-port row, the state code of each)."""
    records = records.unify_dictionaries().combine_chunks()
    outcome = _plain(records.column("outcome"))
    served = _mask(pc.is_in(outcome, pa.array([OPEN, ANSWERED])))
    closed = _mask(pc.equal(outcome, REJECTED))
    rows = np.flatnonzero((served | closed) & _mask(pc.is_valid(records.column("server_h"))))
    return records, rows, served[rows].astype(np.int64)


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _codes(column: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """(int64 dictionary indices of `rows`, -1 for null; dictionary values) of a column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    indices = array.indices if array.null_count == 0 else pc.fill_null(array.indices, -1)
    return indices.to_numpy(zero_copy_only=False).astype(np.int64)[rows], array.dictionary


def _aggregate(records: pa.Table) -> tuple[pa.Table, pa.Table]:
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
    server_idx, server_dict = _codes(records.column("server_h"), rows)
    client_idx, client_dict = _codes(records.column("client_h"), rows)
    hosts, host_v4 = _hosts_in_address_order(server_dict, client_dict)
    s_host = pc.index_in(server_dict, hosts).to_numpy(zero_copy_only=False).astype(np.int64)[server_idx]
    c_host = pc.index_in(client_dict, hosts).to_numpy(zero_copy_only=False).astype(np.int64)[client_idx]
    proto, proto_dict = _codes(records.column("proto"), rows)
    sensor, sensor_dict = _codes(records.column("sensor"), rows)
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

    ts = records.column("ts").take(pa.array(rows))
    pairs = pa.table({"key": key, "client": c_host, "ts": ts}).group_by(["key", "client"])
    pairs = pairs.aggregate([("ts", "min"), ("ts", "max"), ("ts", "count")])
    pair_key, client = pairs.column("key").to_numpy(), pairs.column("client").to_numpy()
    order = np.lexsort((client, pair_key))
    pairs, pair_key, client = pairs.take(pa.array(order)), pair_key[order], client[order]
    sensor_col, *server_cols = key_columns(pair_key)
    daily_clients = pa.table(
        [sensor_col, _strings(client, hosts), *server_cols, pa.array(host_v4[client]),
         pairs.column("ts_min"), pairs.column("ts_max"), pairs.column("ts_count").cast(pa.int64())],
        schema=DAILY_CLIENTS_SCHEMA,
    )  # fmt: skip

    by_server = pairs.group_by("key", use_threads=False).aggregate(
        [("ts_min", "min"), ("ts_max", "max"), ("ts_count", "sum")]
    )
    by_server = by_server.take(pa.array(np.argsort(by_server.column("key").to_numpy())))
    server_key = by_server.column("key").to_numpy()
    is_v4 = host_v4[client] != NOT_V4
    daily_servers = pa.table(
        [*key_columns(server_key), by_server.column("ts_min_min"), by_server.column("ts_max_max"),
         by_server.column("ts_count_sum").cast(pa.int64()), _services(records, rows, key, server_key),
         _first_reply(records, rows, ts, key, server_key),
         _lists(pair_key[is_v4], pa.array(host_v4[client[is_v4]]), server_key),
         _lists(pair_key[~is_v4], _strings(client[~is_v4], hosts), server_key)],
        schema=DAILY_SERVERS_SCHEMA,
    )  # fmt: skip
    return daily_servers, daily_clients


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

    Daily files hold plain strings: Parquet dictionary-encodes them per
    row group (an Arrow dictionary would be written whole into every row
    group), and row-group statistics on them can prune.
    """
    return pc.take(values.cast(pa.string()), pa.array(indices, mask=indices < 0))


def _lists(key: np.ndarray, values: pa.Array, server_key: np.ndarray) -> pa.Array:
    """`values` gathered into one list per entry of `server_key` (empty where
    none). Both key arrays are sorted and every `key` is in `server_key`."""
    offsets = np.append(np.searchsorted(key, server_key), len(key)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _services(records: pa.Table, rows: np.ndarray, key: np.ndarray, server_key: np.ndarray) -> pa.Array:
    """Per server key (sorted `server_key`), the sorted distinct Zeek services."""
    service, service_dict = _codes(records.column("service"), rows)
    names = service_dict.cast(pa.string())
    seen = service >= 0
    combos = pa.table({"key": key[seen], "service": service[seen]}).group_by(["key", "service"]).aggregate([])
    combo_key, code = combos.column("key").to_numpy(), combos.column("service").to_numpy()
    rank = pc.rank(names, sort_keys="ascending").to_numpy().astype(np.int64)
    order = np.lexsort((rank[code], combo_key))
    return _lists(combo_key[order], pc.take(names, pa.array(code[order])), server_key)


def _first_reply(
    records: pa.Table, rows: np.ndarray, ts: pa.ChunkedArray, key: np.ndarray, server_key: np.ndarray
) -> pa.Array:
    """Per server key (sorted `server_key`), the non-empty server reply of its
    earliest connection (the first in file order on a tie)."""
    replies = records.column("server_reply").combine_chunks()
    length = pc.fill_null(pc.binary_length(replies), 0).to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(length[rows] > 0)
    first_row = np.full(len(server_key), np.iinfo(np.int64).max)
    if len(candidates):
        server = pc.index_in(pa.array(key[candidates]), pa.array(server_key)).to_numpy()
        when = pc.fill_null(ts.cast(pa.int64()), 0).to_numpy()[candidates]
        earliest = np.full(len(server_key), np.iinfo(np.int64).max)
        np.minimum.at(earliest, server, when)
        won = when == earliest[server]
        np.minimum.at(first_row, server[won], rows[candidates[won]])
    has = first_row < np.iinfo(np.int64).max
    return pc.take(replies, pa.array(first_row, mask=~has))


def daily_servers(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, server_h, proto, server_p, state).

    Columns as DAILY_SERVERS_SCHEMA: first/last seen, connections, the
    distinct Zeek services, the first server reply of the day, and the
    day's distinct clients of the server.
    """
    return _aggregate(records)[0]


def daily_clients(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, client_h, server_h, proto, server_p, state)."""
    return _aggregate(records)[1]


def _daily_path(store: Path, kind: str, day: str) -> Path:
    return Path(store) / DAILY_DIR / kind / f"date={day}" / "part.parquet"


def built_generation(store: Path, kind: str, day: str) -> int | None:
    """The ledger generation a daily file was built from, or None if absent."""
    path = _daily_path(store, kind, day)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _file_generation(str(path), *_identity(stat))


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a daily file from another: files are
    replaced (a new inode), never rewritten."""
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=4096)
def _file_generation(path: str, inode: int, mtime_ns: int, size: int) -> int | None:
    """The generation in one daily file's footer (cached by file identity)."""
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    dictionary = [f.name for f in table.schema if pa.types.is_string(f.type)]
    statistics = ["sensor", "state", "server_v4", "first_seen"]
    write_parquet_synced(table, tmp, compression="zstd", use_dictionary=dictionary or False,
                         row_group_size=row_group_size, write_statistics=statistics)  # fmt: skip
    os.replace(tmp, path)


def rebuild_day(store: Path, day: str, generation: int) -> None:
    """Recompute both dailies of `day` from its records and replace them atomically."""
    servers, clients = _aggregate(read_day_records(store, day, _RECORD_COLUMNS))
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
    stamp = tuple((str(f), *_identity(f.stat())) for f in files)
    dataset = _dataset(stamp, kind)
    return dataset.to_table(columns=columns, filter=where).unify_dictionaries()


@functools.lru_cache(maxsize=8)
def _dataset(files: tuple[tuple[str, int, int, int], ...], kind: str) -> ds.Dataset:
    """A dataset over daily files (path and identity), kept while none of
    them changes: the scans of one query read each footer once."""
    schema = DAILY_SERVERS_SCHEMA if kind == SERVERS else DAILY_CLIENTS_SCHEMA
    return ds.dataset([path for path, *_ in files], format="parquet", schema=schema)


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
