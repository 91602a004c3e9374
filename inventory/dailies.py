"""Reading the aggregates: the only thing inventories read.

A query's Snapshot (ingest.snapshot: the ledger read once) lists each day's partial aggregates
(ingest.partials) in two layers. A query range that covers a whole day reads
the day's coarse partials; a range that cuts a day reads its fine
partials, using whole those inside the range and re-aggregating only the
records of those that straddle its edge. A month's roll-up
(ingest.rollups) stands in for the days it covers when the range covers
them all and none has changed since. Rows of several partials (and days)
with the same key are merged by the inventory's group-bys, so a query
never writes and its memory follows what it keeps, not the day. Every
file is read through the snapshot, verified against the ledger's stamp:
a damaged file stops the query with one line, never a wrong answer.

A store written by an older synack (days with records but no partials)
is answered from its records in memory, a day at a time; `upgrade_needed`
says so, and the next ingest, watch or `synack rebuild` upgrades it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.aggregates import (
    DAILY_CLIENTS_SCHEMA,
    DAILY_SERVERS_SCHEMA,
    RECORD_COLUMNS,
    aggregate_day,
    merger,
    schema_of,
)
from synack.ingest.snapshot import (
    CLIENTS,
    COARSE_FLAG,
    CORE_SCHEMA,
    RANGE_ONLY,
    SERVERS,
    TIMESTAMP,
    FileStamp,
    Partial,
    Rollup,
    Snapshot,
)
from synack.inventory.store_reader import StoreLike, days_between, snapshot_of

__all__ = ["CLIENTS", "SERVERS", "Catalog", "read_catalog", "rows_in_range", "sensor_days", "upgrade_needed"]

#: Records of an older store's day are aggregated this many at a time.
_BATCH = 1 << 20


@dataclass
class Catalog:
    """A snapshot's aggregates by day and layer, for choosing what a range reads."""

    snapshot: Snapshot
    coarse: dict[str, list[Partial]] = field(default_factory=dict)
    fine: dict[str, list[Partial]] = field(default_factory=dict)
    legacy_days: list[str] = field(default_factory=list)

    @property
    def days(self) -> list[str]:
        return sorted(set(self.coarse) | set(self.legacy_days))

    @property
    def rollups(self) -> dict[str, Rollup]:
        """The monthly roll-ups."""
        return {m: r for m, r in self.snapshot.rollups.items() if not r.is_sightings}

    @property
    def pruned(self) -> frozenset[str]:
        """The days whose records were pruned: a range cutting one reads it whole."""
        return self.snapshot.state.pruned_days

    @property
    def sightings(self) -> dict[str, Rollup]:
        """Each year's sightings (ingest.sightings)."""
        return {y: r for y, r in self.snapshot.rollups.items() if r.is_sightings}

    @property
    def generations(self) -> dict[str, int]:
        return self.snapshot.generations

    @property
    def version(self) -> int:
        return self.snapshot.version


def read_catalog(store: StoreLike) -> Catalog:
    """The aggregates of `store`'s snapshot by day and layer. Raises
    InventoryError for no store, or a damaged one."""
    snap = snapshot_of(store)
    catalog = Catalog(snap)
    for p in snap.partials:
        if p.coarse:
            catalog.coarse.setdefault(p.day, []).append(p)
        if p.fine:
            catalog.fine.setdefault(p.day, []).append(p)
    catalog.legacy_days = sorted(set(snap.record_days()) - set(catalog.coarse))
    return catalog


def sensor_days(store: StoreLike) -> list[tuple[str, str, int, int]]:
    """(day, sensor, records, newest record µs) per day and sensor of the
    store ("" for records without a sensor)."""
    return snapshot_of(store).day_sensors()


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
    partial), to be merged by the caller (min, max, sum, union). Every file
    is read verified (ingest.snapshot: raises StoreChanged or DamagedFile).

    The years' sightings (ingest.sightings) stand in for the whole days
    they cover: always for server rows, and for client rows when `columns`
    leave out the server (then client rows may have no server)."""
    schema = schema_of(kind)
    tables = list(tables_in_range(store, kind, start, end, where=where, columns=columns, catalog=catalog))
    if not tables:
        empty = schema.empty_table()
        return empty.select(columns) if columns is not None else empty
    return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()


def tables_in_range(store: StoreLike, kind: str, start: dt.datetime | None, end: dt.datetime | None, *,
                    where: pc.Expression | None = None, columns: list[str] | None = None,
                    catalog: Catalog | None = None, narrow: pc.Expression | None = None,
                    firsts: bool = False) -> Iterator[pa.Table]:  # fmt: skip
    """rows_in_range's rows one file (or one re-aggregated partial) at a
    time, for a caller that merges as it reads: its memory then follows
    what it keeps, not the range. `narrow`: a test of few rows on a column
    the files are not sorted by (one host's client rows) that every row
    `where` keeps passes: only the row groups holding such rows are decoded
    (store_files.narrowed_read). `firsts`: see select (`where` must then
    keep only rows first seen in the range)."""
    current = catalog if catalog is not None else read_catalog(store)
    schema = schema_of(kind)
    chosen = select(current, start, end, kind, sightings=sightings_answer(kind, columns), firsts=firsts)
    options = {"schema": schema, "columns": columns, "filters": where}
    if narrow is not None:
        options["narrow"] = narrow
        if kind == CLIENTS:
            chosen = chosen.without(quiet_client_days(current, narrow))
    for _, table in _selected_tables(current.snapshot, kind, chosen, start, end, options):
        yield table


def pair_tables_in_range(
    store: StoreLike, start: dt.datetime | None, end: dt.datetime | None, *, client_where: pc.Expression,
    client_columns: list[str], server_where: pc.Expression, server_columns: list[str],
    narrow: pc.Expression | None = None,
) -> Iterator[tuple[str, pa.Table]]:  # fmt: skip
    """The client-server pairs of [start, end), one file at a time, as
    (kind, rows): each year's sightings that the range covers give their
    server rows (SERVERS: `server_columns`, their client lists holding the
    year's pairs: a client's servers over a year are not kept with its
    client sightings), the other files (the same as tables_in_range reads
    for client rows with the years' sightings in place) their client rows
    (CLIENTS: `client_columns`; `narrow` as tables_in_range)."""
    current = read_catalog(store)
    snap = current.snapshot
    chosen = select(current, start, end, CLIENTS, sightings=True)
    clients = {"schema": DAILY_CLIENTS_SCHEMA, "columns": client_columns, "filters": client_where}
    if narrow is not None:
        clients["narrow"] = narrow
        chosen = chosen.without(quiet_client_days(current, narrow))

    def year_of_servers(year: Rollup) -> tuple[str, pa.Table]:
        return SERVERS, snap.read_rollup(SERVERS, year, schema=DAILY_SERVERS_SCHEMA, columns=server_columns,
                                         filters=server_where)  # fmt: skip

    yield from _selected_tables(snap, CLIENTS, chosen, start, end, clients, year_of_servers)


def _selected_tables(
    snap: Snapshot, kind: str, chosen: Selection, start: dt.datetime | None, end: dt.datetime | None,
    options: dict[str, Any], years: Callable[[Rollup], tuple[str, pa.Table]] | None = None,
) -> Iterator[tuple[str, pa.Table]]:  # fmt: skip
    """(kind, rows) of each file `chosen` names, one at a time: roll-ups and
    partials read with `options` (columns, filters, schema, narrow), the
    days of an older store and the partials straddling the range's edge
    aggregated from their records and filtered alike; with `years`, the
    years' sightings are read by it instead."""
    for rollup in chosen.rollups:
        if years is not None and rollup.is_sightings:
            yield years(rollup)
        else:
            yield kind, snap.read_rollup(kind, rollup, **options)
    for p in chosen.partials:
        yield kind, snap.read_partial(kind, p, **options)
    lo = _micros(start) if start is not None else None
    hi = _micros(end) if end is not None else None
    where, columns = options.get("filters"), options.get("columns")
    jobs = [snap.record_files(day) for day in chosen.legacy_days]
    jobs += [snap.record_files(day, p.source_id, (p.chunk_lo, p.chunk_hi)) for day, p in chosen.straddling]
    for files in jobs:
        part = _aggregate_records(snap, kind, files, lo, hi)
        part = part.filter(where) if where is not None else part
        yield kind, part.select(columns) if columns is not None else part


def sightings_answer(kind: str, columns: list[str] | None) -> bool:
    """Whether rows of only `columns` (None: all) of `kind` can come from the years' sightings."""
    if columns is None:
        return not RANGE_ONLY[kind]
    return not set(columns) & set(RANGE_ONLY[kind])


@dataclass
class Selection:
    """What a range reads: whole aggregate files (roll-ups and partials), the
    partials straddling its edge (their records are re-aggregated) and the
    days of an older store (aggregated from records)."""

    rollups: list[Rollup] = field(default_factory=list)
    partials: list[Partial] = field(default_factory=list)
    straddling: list[tuple[str, Partial]] = field(default_factory=list)  # (day, partial)
    legacy_days: list[str] = field(default_factory=list)

    def without(self, days: set[str]) -> Selection:
        """This selection less the files (roll-ups, years' sightings, partials) that hold only rows of `days`."""
        if not days:
            return self
        return Selection(
            rollups=[r for r in self.rollups if not set(r.days) <= days],
            partials=[p for p in self.partials if p.day not in days],
            straddling=[(day, p) for day, p in self.straddling if day not in days],
            legacy_days=self.legacy_days,
        )

    def rows(self, kind: str) -> int | None:
        """An upper bound of the `kind` rows read, or None when unknown (an older store's days)."""
        if self.legacy_days:
            return None
        return (sum(r.kind_rows(kind) for r in self.rollups) + sum(p.kind_rows(kind) for p in self.partials)
                + sum(p.kind_rows(kind) for _, p in self.straddling))  # fmt: skip


def quiet_client_days(catalog: Catalog, narrow: pc.Expression) -> set[str]:
    """The days whose client rows hold no client that passes `narrow` (a
    test of few clients, see tables_in_range), known from the years'
    client sightings without reading the days: of the days a year's
    sightings hold as they are now (same generation), those before the
    first sighting of such a client that year or after its last (a day's
    rows are first and last seen within the day). A host that is never a
    client skips every such day; a client's question, its quiet months."""
    quiet: set[str] = set()
    generations = catalog.generations
    for year in catalog.sightings.values():
        held = sorted(day for day, g in year.days.items() if generations.get(day) == g)
        if not held:
            continue
        seen = _client_spans(catalog.snapshot, year).filter(narrow)
        if len(seen):
            first = pc.min(seen.column("first_seen")).as_py().date().isoformat()
            last = pc.max(seen.column("last_seen")).as_py().date().isoformat()
            quiet.update(day for day in held if day < first or day > last)
        else:
            quiet.update(held)
    return quiet


def _client_spans(snap: Snapshot, year: Rollup) -> pa.Table:
    """Per client number (client_v4; NOT_V4 for every other address) of a
    year's client sightings, its first and last sighting: read once per
    snapshot (the bands of an answer each ask)."""
    key = ("client spans", snap.rollup_file(CLIENTS, year))
    spans = snap.cache.derived.get(key)
    if spans is None:
        rows = snap.read_rollup(CLIENTS, year, schema=DAILY_CLIENTS_SCHEMA,
                                columns=["client_v4", "first_seen", "last_seen"])  # fmt: skip
        spans = rows.group_by("client_v4").aggregate([("first_seen", "min"), ("last_seen", "max")])
        spans = spans.rename_columns(["client_v4", "first_seen", "last_seen"])
        snap.cache.derived[key] = spans
    return spans


def select(catalog: Catalog, start: dt.datetime | None, end: dt.datetime | None, kind: str = SERVERS, *,
           sightings: bool = False, firsts: bool = False) -> Selection:  # fmt: skip
    """The files and partials that hold the `kind` aggregates of [start, end);
    with `sightings`, the years' sightings first (see rows_in_range). With
    `firsts` (a question of first uses, whose rows the caller filters by
    first_seen in [start, end)) a year's sightings stand in for whichever
    of its days the range holds: a key's first sighting of the year falls
    in the range exactly when the key is first seen that year in it."""
    lo = _micros(start) if start is not None else None
    hi = _micros(end) if end is not None else None
    chosen = Selection()
    days = days_between(catalog.days, start, end)
    whole_days = {day for day in days if _whole(day, lo, hi) or day in catalog.pruned}
    generations = catalog.generations
    rolled_up: set[str] = set()
    for year in catalog.sightings.values() if sightings else ():
        if firsts:
            usable = not set(days).isdisjoint(year.days) and all(generations.get(d) == g for d, g in year.days.items())
        else:
            usable = all(day in whole_days and generations.get(day) == g for day, g in year.days.items())
        if usable:
            chosen.rollups.append(year)
            rolled_up.update(year.days)
    for rollup in catalog.rollups.values():
        if rolled_up.isdisjoint(rollup.days) and all(
            day in whole_days and generations.get(day) == g for day, g in rollup.days.items()
        ):
            chosen.rollups.append(rollup)
            rolled_up.update(rollup.days)
    for day in days:
        if day in rolled_up:
            continue
        if day in catalog.legacy_days:
            chosen.legacy_days.append(day)
        elif day in whole_days:
            chosen.partials.extend(p for p in catalog.coarse.get(day, []) if p.coarse & COARSE_FLAG[kind])
        else:
            for p in catalog.fine.get(day, []):
                if (lo is None or p.t_min >= lo) and (hi is None or p.t_max < hi):
                    chosen.partials.append(p)
                elif (lo is None or p.t_max >= lo) and (hi is None or p.t_min < hi):
                    chosen.straddling.append((day, p))
    return chosen


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def widened_days(catalog: Catalog, start: dt.datetime | None, end: dt.datetime | None) -> list[str]:
    """The pruned days [start, end) cuts: answered whole (their records are gone)."""
    lo = _micros(start) if start is not None else None
    hi = _micros(end) if end is not None else None
    return [day for day in days_between(sorted(catalog.pruned), start, end) if not _whole(day, lo, hi)]


def _whole(day: str, lo: int | None, hi: int | None) -> bool:
    """Whether [lo, hi) µs covers all of `day`."""
    day_start = _micros(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
    return (lo is None or lo <= day_start) and (hi is None or hi >= day_start + 86_400_000_000)


def _micros(when: dt.datetime) -> int:
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


def _aggregate_records(snap: Snapshot, kind: str, files: list[tuple[str, FileStamp | None, int]], lo: int | None,
                       hi: int | None) -> pa.Table:  # fmt: skip
    """The `kind` aggregate of the records of `files` in [lo, hi) µs, read a
    file at a time (verified) and aggregated a batch at a time (memory
    follows a file, the batch and the result)."""
    schema = pa.schema([CORE_SCHEMA.field(c) for c in RECORD_COLUMNS])
    merge = merger(kind)
    if not files:
        return merge([])
    ts = pc.field("ts")
    condition = None
    if lo is not None:
        condition = ts >= pa.scalar(lo, pa.int64()).cast(TIMESTAMP)
    if hi is not None:
        upper = ts < pa.scalar(hi, pa.int64()).cast(TIMESTAMP)
        condition = upper if condition is None else condition & upper
    done: list[pa.Table] = []
    pending = 0
    for path, stamp, rows in files:
        records = snap.read(path, stamp, rows if condition is None else None, columns=RECORD_COLUMNS,
                            filters=condition, schema=schema)  # fmt: skip
        for batch in records.to_batches(max_chunksize=_BATCH):
            if batch.num_rows:
                table = aggregate_day(pa.Table.from_batches([batch]))[0 if kind == SERVERS else 1]
                done.append(table)
                pending += len(table)
                if pending > _BATCH:
                    done, pending = [merge(done)], 0
        del records
    return merge(done)
