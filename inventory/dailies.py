"""The daily files: the only thing inventories read.

    daily/servers/date=YYYY-MM-DD/part.parquet
    daily/clients/date=YYYY-MM-DD/part.parquet

Each is a pure function of one day's records (see daily_rows), keyed by sensor so that a sensor filter stays exact, and
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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ingest.schema import TIMESTAMP
from ingest.store import write_parquet_synced
from inventory.daily_rows import (
    DAILY_CLIENTS_SCHEMA,
    DAILY_SERVERS_SCHEMA,
    RECORD_COLUMNS,
    aggregate_day,
    daily_clients,
    daily_servers,
)
from inventory.store_reader import DAILY_DIR, day_generations, days_between, read_day_records

SERVERS = "servers"
CLIENTS = "clients"
_GENERATION_KEY = b"synack.generation"
_FORMAT_KEY = b"synack.daily_format"
#: Bumped whenever the daily files' layout changes: older files count as stale.
DAILY_FORMAT = b"4"

#: Daily rows are sorted by (state, server_v4) in small row groups, so a
#: query for one state and IPv4 networks skips most of a file unread.
#: Server rows are the ones filtered by network (most of them are outside
#: the monitored ones), so their groups are the smaller.
SERVER_ROW_GROUP = 2048
CLIENT_ROW_GROUP = 16384


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
    servers, clients = aggregate_day(read_day_records(store, day, RECORD_COLUMNS))
    _write_atomic(servers, _daily_path(store, SERVERS, day), generation, SERVER_ROW_GROUP)
    _write_atomic(clients, _daily_path(store, CLIENTS, day), generation, CLIENT_ROW_GROUP)


#: Days rebuilt at once: one more than the cores, since a rebuild also
#: waits on reads, fsyncs and the GIL (2 cores: 3 workers took 5.0 s for
#: 30 days where 2 took 5.9-6.5 s). Each holds one day's records.
REFRESH_WORKERS = min((os.cpu_count() or 1) + 1, 4)


def refresh(store: Path | str, workers: int = REFRESH_WORKERS) -> list[str]:
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
            records = read_day_records(store, day, RECORD_COLUMNS)
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
