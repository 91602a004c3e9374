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
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ingest.schema import ANSWERED, OPEN, REJECTED, TIMESTAMP
from inventory.store_reader import DAILY_DIR, day_generations, days_between, read_day_records

SERVED = "served"
CLOSED = "closed"
SERVERS = "servers"
CLIENTS = "clients"
_GENERATION_KEY = b"synack.generation"
_RECORD_COLUMNS = ["ts", "sensor", "proto", "service", "server_reply", "outcome", "server_h", "server_p", "client_h"]

SERVER_KEY = ["sensor", "server_h", "proto", "server_p", "state"]
CLIENT_KEY = ["sensor", "client_h", "server_h", "proto", "server_p", "state"]

DAILY_SERVERS_SCHEMA = pa.schema(
    [
        ("sensor", pa.string()),
        ("server_h", pa.string()),
        ("proto", pa.string()),
        ("server_p", pa.uint16()),
        ("state", pa.string()),
        ("first_seen", TIMESTAMP),
        ("last_seen", TIMESTAMP),
        ("connections", pa.int64()),
        ("services", pa.list_(pa.string())),
        ("server_reply", pa.binary()),
    ]
)
DAILY_CLIENTS_SCHEMA = pa.schema(
    [
        ("sensor", pa.string()),
        ("client_h", pa.string()),
        ("server_h", pa.string()),
        ("proto", pa.string()),
        ("server_p", pa.uint16()),
        ("state", pa.string()),
        ("first_seen", TIMESTAMP),
        ("last_seen", TIMESTAMP),
        ("connections", pa.int64()),
    ]
)


def _with_state(records: pa.Table) -> pa.Table:
    """Records that make a server or closed-port row, with a `state` column, plain strings."""
    outcome = records.column("outcome").cast(pa.string())
    served = pc.is_in(outcome, pa.array([OPEN, ANSWERED]))
    closed = pc.equal(outcome, REJECTED)
    keep = pc.and_(pc.or_(served, closed), pc.is_valid(records.column("server_h")))
    t = records.filter(keep)
    plain = pa.schema([(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in t.schema])
    t = t.cast(plain)
    state = pc.if_else(pc.equal(t.column("outcome"), REJECTED), CLOSED, SERVED)
    return t.append_column("state", state).sort_by("ts")


def daily_servers(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, server_h, proto, server_p, state).

    Columns as DAILY_SERVERS_SCHEMA: first/last seen, connections, the
    distinct Zeek services, and the first server reply of the day.
    """
    t = _with_state(records)
    if len(t) == 0:
        return DAILY_SERVERS_SCHEMA.empty_table()
    g = t.group_by(SERVER_KEY, use_threads=False).aggregate(
        [("ts", "min"), ("ts", "max"), ("ts", "count"), ("service", "distinct"), ("server_reply", "first")]
    )
    services = pc.list_sort(g.column("service_distinct")) if hasattr(pc, "list_sort") else g.column("service_distinct")
    return pa.table(
        [
            g.column("sensor"),
            g.column("server_h"),
            g.column("proto"),
            g.column("server_p"),
            g.column("state"),
            g.column("ts_min"),
            g.column("ts_max"),
            g.column("ts_count").cast(pa.int64()),
            services.cast(pa.list_(pa.string())),
            g.column("server_reply_first"),
        ],
        schema=DAILY_SERVERS_SCHEMA,
    )


def daily_clients(records: pa.Table) -> pa.Table:
    """One day's records -> one row per (sensor, client_h, server_h, proto, server_p, state)."""
    t = _with_state(records)
    if len(t) == 0:
        return DAILY_CLIENTS_SCHEMA.empty_table()
    g = t.group_by(CLIENT_KEY, use_threads=False).aggregate([("ts", "min"), ("ts", "max"), ("ts", "count")])
    return pa.table(
        [
            g.column("sensor"),
            g.column("client_h"),
            g.column("server_h"),
            g.column("proto"),
            g.column("server_p"),
            g.column("state"),
            g.column("ts_min"),
            g.column("ts_max"),
            g.column("ts_count").cast(pa.int64()),
        ],
        schema=DAILY_CLIENTS_SCHEMA,
    )


def _daily_path(store: Path, kind: str, day: str) -> Path:
    return Path(store) / DAILY_DIR / kind / f"date={day}" / "part.parquet"


def built_generation(store: Path, kind: str, day: str) -> int | None:
    """The ledger generation a daily file was built from, or None if absent."""
    path = _daily_path(store, kind, day)
    if not path.exists():
        return None
    meta = pq.read_schema(path).metadata or {}
    value = meta.get(_GENERATION_KEY)
    return int(value) if value is not None else None


def stale_days(store: Path) -> list[str]:
    """Days whose records changed since their dailies were built."""
    out = []
    for day, gen in sorted(day_generations(store).items()):
        if any(built_generation(store, kind, day) != gen for kind in (SERVERS, CLIENTS)):
            out.append(day)
    return out


def _write_atomic(table: pa.Table, path: Path, generation: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({_GENERATION_KEY: str(generation).encode()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rebuild_day(store: Path, day: str, generation: int) -> None:
    """Recompute both dailies of `day` from its records and replace them atomically."""
    records = read_day_records(store, day, _RECORD_COLUMNS)
    _write_atomic(daily_servers(records), _daily_path(store, SERVERS, day), generation)
    _write_atomic(daily_clients(records), _daily_path(store, CLIENTS, day), generation)


def refresh(store: Path | str) -> list[str]:
    """Rebuild the dailies of every stale day; return those days.

    Safe to run at any time and concurrently with an ingest: each file is
    replaced atomically and names the generation it reflects.
    """
    store = Path(store)
    generations = day_generations(store)
    days = stale_days(store)
    for day in days:
        rebuild_day(store, day, generations[day])
    return days


def read_dailies(store: Path | str, kind: str, days: list[str] | None = None) -> pa.Table:
    """The daily rows of `kind` ("servers" or "clients") for `days` (all when None)."""
    schema = DAILY_SERVERS_SCHEMA if kind == SERVERS else DAILY_CLIENTS_SCHEMA
    base = Path(store) / DAILY_DIR / kind
    if days is None:
        files = sorted(base.glob("date=*/part.parquet")) if base.exists() else []
    else:
        files = [p for p in (_daily_path(Path(store), kind, d) for d in days) if p.exists()]
    if not files:
        return schema.empty_table()
    return ds.dataset([str(f) for f in files], format="parquet", schema=schema).to_table()


def rows_in_range(
    store: Path | str, kind: str, start: dt.datetime | None, end: dt.datetime | None, *, refresh_stale: bool = True
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
            parts.append(aggregate(records))
        else:
            whole.append(day)
    parts.insert(0, read_dailies(store, kind, whole))
    return pa.concat_tables(parts)


def _between(ts: pa.ChunkedArray, start: dt.datetime | None, end: dt.datetime | None) -> pa.ChunkedArray:
    mask = pc.is_valid(ts)
    if start is not None:
        mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(start, TIMESTAMP)))
    if end is not None:
        mask = pc.and_(mask, pc.less(ts, pa.scalar(end, TIMESTAMP)))
    return mask
