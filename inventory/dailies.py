"""Reading the aggregates: the only thing inventories read.

The ledger (opened read-only) lists each day's partial aggregates
(ingest.partials) in two layers. A query range that covers a whole day reads
the day's coarse partials; a range that cuts a day reads its fine
partials, using whole those inside the range and re-aggregating only the
records of those that straddle its edge. A month's roll-up
(ingest.rollups) stands in for the days it covers when the range covers
them all and none has changed since. Rows of several partials (and days)
with the same key are merged by the inventory's group-bys, so a query
never writes and its memory follows what it keeps, not the day.

A store written by an older synack (days with records but no partials)
is answered from its records in memory, a day at a time; `upgrade_needed`
says so, and the next ingest, watch or `synack rebuild` upgrades it.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from synack.ingest.aggregates import (
    DAILY_CLIENTS_SCHEMA,
    DAILY_SERVERS_SCHEMA,
    RECORD_COLUMNS,
    aggregate_day,
    merge_clients,
    merge_servers,
)
from synack.ingest.partials import CLIENTS, COARSE, COARSE_FLAG, SERVERS, partial_path
from synack.ingest.rollups import SELECT_ROLLUPS, Rollup, parse_rollups, rollup_path
from synack.ingest.schema import CORE_SCHEMA, TIMESTAMP
from synack.ingest.sensor_notices import NOTICES_DIR
from synack.ingest.store import LEDGER_VERSION
from synack.ingest.store_files import StoreFS
from synack.inventory.store_reader import CONN_DIR, InventoryError, StoreLike, days_between, store_files

__all__ = ["CLIENTS", "SERVERS", "Catalog", "read_catalog", "rows_in_range", "sensor_days", "upgrade_needed"]

#: Records of an older store's day are aggregated this many at a time.
_BATCH = 1 << 20


@dataclass(frozen=True)
class PartialRef:
    """What a query needs to know of one partial."""

    name: str
    source_id: str
    chunk_lo: int
    chunk_hi: int
    t_min: int
    t_max: int
    server_rows: int = 0
    coarse: int = COARSE  # the kinds whole-day reads take from it (ingest.partials.COARSE_*)


@dataclass
class Catalog:
    """The ledger's view of the aggregates, read once per query."""

    store: StoreFS
    version: int = LEDGER_VERSION
    coarse: dict[str, list[PartialRef]] = field(default_factory=dict)
    fine: dict[str, list[PartialRef]] = field(default_factory=dict)
    legacy_days: list[str] = field(default_factory=list)
    generations: dict[str, int] = field(default_factory=dict)
    rollups: dict[str, Rollup] = field(default_factory=dict)

    @property
    def days(self) -> list[str]:
        return sorted(set(self.coarse) | set(self.legacy_days))

    def record_files(self, day: str, partial: PartialRef) -> list[str]:
        """The record files behind one partial (asked only for those straddling a range's edge)."""
        with _ledger(self.store) as db:
            rows = db.execute(
                "SELECT path FROM files WHERE day = ? AND source_id = ? AND chunk BETWEEN ? AND ?",
                (day, partial.source_id, partial.chunk_lo, partial.chunk_hi),
            ).fetchall()
        return [str(self.store.root / path) for (path,) in rows]


@contextmanager
def _ledger(store: StoreFS) -> Iterator[sqlite3.Connection]:
    """The store's ledger, read-only. Raises InventoryError for no store, or
    a store whose records have lost their ledger."""
    path = store.ledger
    if not path.exists():
        try:
            records = store.files_under(store.root / CONN_DIR)
        except OSError as err:
            raise InventoryError(f"cannot read the store {store}: {err}") from None
        if records:
            raise InventoryError(f"the store {store} holds records but no ledger {path}: it is damaged")
        raise InventoryError(f"no synack store at {store} (run 'synack ingest' first, or pass --store)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise InventoryError(f"cannot read the ledger {path}: {err}") from None
    try:
        yield db
    finally:
        db.close()


def read_catalog(store: StoreLike) -> Catalog:
    """What the ledger of `store` says the aggregates are. Raises InventoryError
    for no store, or a damaged one."""
    catalog = Catalog(store_files(store))
    with _ledger(catalog.store) as db:
        try:
            catalog.version = db.execute("PRAGMA user_version").fetchone()[0]
            if catalog.version > LEDGER_VERSION:
                raise InventoryError(
                    f"store {store} was written by a newer synack (ledger version {catalog.version}, this one "
                    f"reads up to {LEDGER_VERSION}): upgrade synack"
                )
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "days" not in tables:
                if catalog.store.files_under(catalog.store.root / CONN_DIR):
                    raise sqlite3.DatabaseError("it holds no tables, but the store holds records")
                return catalog  # an empty ledger of a first run that wrote nothing
            catalog.generations = dict(db.execute("SELECT day, generation FROM days"))
            record_days = set(catalog.generations)
            if catalog.version >= 2:
                for name, day, source, lo, hi, t0, t1, fine, coarse, server_rows in db.execute(
                    "SELECT name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, fine, coarse, server_rows "
                    "FROM partials"
                ):
                    flags = coarse if catalog.version >= 4 else COARSE if coarse else 0  # 1 meant both before 4
                    ref = PartialRef(name, source, lo, hi, t0, t1, server_rows, flags)
                    if coarse:
                        catalog.coarse.setdefault(day, []).append(ref)
                    if fine:
                        catalog.fine.setdefault(day, []).append(ref)
            catalog.legacy_days = sorted(record_days - set(catalog.coarse))
            if catalog.version >= 3:
                catalog.rollups = parse_rollups(db.execute(f"{SELECT_ROLLUPS} WHERE pending = 0"))
        except sqlite3.Error as err:
            path = catalog.store.ledger
            raise InventoryError(f"the ledger {path} is damaged ({err}): synack cannot answer from it") from None
    return catalog


def sensor_days(store: StoreLike) -> list[tuple[str, str, int, int]]:
    """(day, sensor, records, newest record µs) per day and sensor of the
    store, from the ledger ("" for records without a sensor)."""
    with _ledger(store_files(store)) as db:
        try:
            return db.execute("SELECT day, sensor, rows, newest FROM day_sensors ORDER BY day, sensor").fetchall()
        except sqlite3.Error:
            return []  # a ledger older than version 2: no sensors recorded


def sources_summary(store: StoreLike) -> dict[str, Any]:
    """From the ledger: how many log sources were ingested, the lines they
    quarantined, and when the last ingest committed (UTC ISO text, or None)."""
    with _ledger(store_files(store)) as db:
        try:
            count, quarantined, last = db.execute(
                "SELECT count(*), COALESCE(sum(quarantined), 0), max(last_ingest) FROM sources"
            ).fetchone()
        except sqlite3.Error:
            return {"sources": 0, "quarantined_lines": 0, "last_ingest": None}  # a first run's empty ledger
    return {"sources": count, "quarantined_lines": quarantined, "last_ingest": last}


def upgrade_needed(store: StoreLike) -> bool:
    """True when some day of `store` has records but no aggregates (an older
    synack wrote it): queries then aggregate those days in memory."""
    return bool(read_catalog(store).legacy_days)


def rows_in_range(
    store: StoreLike,
    kind: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    where: pc.Expression | None = None,
    columns: list[str] | None = None,
    catalog: Catalog | None = None,
) -> pa.Table:
    """Aggregate rows of `kind` ("servers" or "clients") of the records in
    [start, end) that satisfy `where`: several rows may share a key (one per
    partial), to be merged by the caller (min, max, sum, union)."""
    files = store_files(store)
    failure: Exception | None = None
    for attempt in range(4):
        current = catalog if catalog is not None and attempt == 0 else read_catalog(files)
        try:
            return _rows(files, kind, start, end, where, columns, current)
        except FileNotFoundError as err:
            failure = err  # a compaction replaced a partial after the ledger was read: read it again
        except (pa.ArrowInvalid, OSError) as err:
            failure = err
            break
    raise InventoryError(damaged_file(files, failure)) from None


def damaged_file(store: StoreFS, err: Exception | None) -> str:
    """The one-line error for a store file that the ledger lists but that cannot be read."""
    what = " ".join(str(err).split())[:300]
    return (
        f"a file of store {store} is damaged or missing ({what}); `synack check` says which, "
        f"`synack check --repair` rebuilds what can be rebuilt"
    )


@dataclass
class Selection:
    """What a range reads: whole aggregate files (roll-ups and partials, with
    their server rows), the partials straddling its edge (their records are
    re-aggregated) and the days of an older store (aggregated from records)."""

    files: list[tuple[str, str, str, int]] = field(default_factory=list)  # (folder, period, name, server rows)
    straddling: list[tuple[str, PartialRef]] = field(default_factory=list)  # (day, partial)
    legacy_days: list[str] = field(default_factory=list)

    def server_rows(self) -> int | None:
        """An upper bound of the server rows read, or None when unknown (an older store's days)."""
        if self.legacy_days:
            return None
        return sum(rows for *_, rows in self.files) + sum(p.server_rows for _, p in self.straddling)


def select(catalog: Catalog, start: dt.datetime | None, end: dt.datetime | None, kind: str = SERVERS) -> Selection:
    """The files and partials that hold the `kind` aggregates of [start, end)."""
    lo = _micros(start) if start is not None else None
    hi = _micros(end) if end is not None else None
    chosen = Selection()
    days = days_between(catalog.days, start, end)
    whole_days = {day for day in days if _whole(day, lo, hi)}
    rolled_up: set[str] = set()
    for rollup in catalog.rollups.values():
        if all(day in whole_days and catalog.generations.get(day) == g for day, g in rollup.days.items()):
            chosen.files.append((ROLLUPS, rollup.month, rollup.name, rollup.server_rows))
            rolled_up.update(rollup.days)
    for day in days:
        if day in rolled_up:
            continue
        if day in catalog.legacy_days:
            chosen.legacy_days.append(day)
        elif day in whole_days:
            chosen.files.extend((PARTIALS, day, p.name, p.server_rows) for p in catalog.coarse.get(day, [])
                                if p.coarse & COARSE_FLAG[kind])  # fmt: skip
        else:
            for p in catalog.fine.get(day, []):
                if (lo is None or p.t_min >= lo) and (hi is None or p.t_max < hi):
                    chosen.files.append((PARTIALS, day, p.name, p.server_rows))
                elif (lo is None or p.t_max >= lo) and (hi is None or p.t_min < hi):
                    chosen.straddling.append((day, p))
    return chosen


def _rows(store: StoreFS, kind: str, start: dt.datetime | None, end: dt.datetime | None,
          where: pc.Expression | None, columns: list[str] | None, catalog: Catalog) -> pa.Table:  # fmt: skip
    schema = DAILY_SERVERS_SCHEMA if kind == SERVERS else DAILY_CLIENTS_SCHEMA
    lo = _micros(start) if start is not None else None
    hi = _micros(end) if end is not None else None
    chosen = select(catalog, start, end, kind)
    files = [
        str((rollup_path if folder == ROLLUPS else partial_path)(store.root, kind, period, name))
        for folder, period, name, _ in chosen.files
    ]
    parts = [_aggregate_records(store, kind, _day_record_files(store, day), lo, hi) for day in chosen.legacy_days]
    parts += [_aggregate_records(store, kind, catalog.record_files(day, p), lo, hi) for day, p in chosen.straddling]
    tables = [_read_files(store, files, schema, where, columns)] if files else []
    for part in parts:
        part = part.filter(where) if where is not None else part
        tables.append(part.select(columns) if columns is not None else part)
    if not tables:
        empty = schema.empty_table()
        return empty.select(columns) if columns is not None else empty
    return pa.concat_tables(tables).unify_dictionaries()


ROLLUPS, PARTIALS = "rollups", "aggregates"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _whole(day: str, lo: int | None, hi: int | None) -> bool:
    """Whether [lo, hi) µs covers all of `day`."""
    day_start = _micros(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
    return (lo is None or lo <= day_start) and (hi is None or hi >= day_start + 86_400_000_000)


def _micros(when: dt.datetime) -> int:
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


def _read_files(store: StoreFS, files: list[str], schema: pa.Schema, where: pc.Expression | None,
                columns: list[str] | None) -> pa.Table:  # fmt: skip
    stamp = tuple((path, *store.identity(PurePath(path))) for path in files)
    return _dataset(store, stamp, schema).to_table(columns=columns, filter=where, fragment_readahead=1,
                                                   batch_readahead=1)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _dataset(store: StoreFS, files: tuple[tuple[str, int, int, int], ...], schema: pa.Schema) -> ds.Dataset:
    """A dataset over aggregate files, kept while none of them changes
    (StoreFS.identity): the scans of one query read each footer once."""
    return store.dataset([path for path, *_ in files], schema=schema)


def _day_record_files(store: StoreFS, day: str) -> list[str]:
    files = store.files_under(store.root / CONN_DIR / f"date={day}")
    return [str(p) for p in files if p.suffix == ".parquet" and not p.name.startswith(".")]


def _aggregate_records(store: StoreFS, kind: str, paths: list[str], lo: int | None, hi: int | None) -> pa.Table:
    """The `kind` aggregate of the records of `paths` in [lo, hi) µs, computed
    a batch at a time (memory follows the batch and the result)."""
    schema = pa.schema([CORE_SCHEMA.field(c) for c in RECORD_COLUMNS])
    merge = merge_servers if kind == SERVERS else merge_clients
    if not paths:
        return merge([])
    ts = pc.field("ts")
    condition = None
    if lo is not None:
        condition = ts >= pa.scalar(lo, pa.int64()).cast(TIMESTAMP)
    if hi is not None:
        upper = ts < pa.scalar(hi, pa.int64()).cast(TIMESTAMP)
        condition = upper if condition is None else condition & upper
    dataset = store.dataset(paths, schema=schema)
    done: list[pa.Table] = []
    pending = 0
    for batch in dataset.to_batches(columns=RECORD_COLUMNS, filter=condition, batch_size=_BATCH):
        if batch.num_rows:
            table = aggregate_day(pa.Table.from_batches([batch]))[0 if kind == SERVERS else 1]
            done.append(table)
            pending += len(table)
            if pending > _BATCH:
                done, pending = [merge(done)], 0
    return merge(done)


def notice_count(store: StoreLike) -> int:
    """How many sensor notices the store keeps, from the ledger."""
    with _ledger(store_files(store)) as db:
        try:
            return int(
                db.execute(
                    "SELECT COALESCE(sum(rows), 0) FROM files WHERE path LIKE ?", (f"{NOTICES_DIR}/%",)
                ).fetchone()[0]
            )
        except sqlite3.Error:
            return 0  # a first run's empty ledger


def notice_files(store: StoreLike) -> tuple[StoreFS, list[str]]:
    """The store's files and its committed sensor-notice files (paths in them), from the ledger."""
    files = store_files(store)
    with _ledger(files) as db:
        try:
            rows = db.execute(
                "SELECT path FROM files WHERE path LIKE ? AND pending = 0 ORDER BY path", (f"{NOTICES_DIR}/%",)
            ).fetchall()
        except sqlite3.Error:
            return files, []  # a first run's empty ledger
    return files, [str(files.root / path) for (path,) in rows]
