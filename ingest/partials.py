"""Partial aggregates: the files that say what a set of one day's chunks aggregates to.

A partial is a pair of Parquet files, its servers and its clients
aggregate (ingest.aggregates), named after what it covers:

    aggregates/servers/date=YYYY-MM-DD/<name>.parquet
    aggregates/clients/date=YYYY-MM-DD/<name>.parquet

`<source-id>-<chunk>` for one chunk's partial, `<source-id>-f<lo>-<hi>`
for a finished source's chunks merged, `m<level>-<lo>-<hi>-<digest>` for a
coarse merge. This module writes them (under temporary names; the store
commits and publishes) and plans the tiered compaction; it never touches
the ledger.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.aggregates import CLIENTS, RECORD_COLUMNS, SERVERS, aggregate_day, merger, schema_of
from synack.ingest.store_files import FileStamp, StoreFS, tmp_name

AGGREGATES_DIR = "aggregates"
KINDS = (SERVERS, CLIENTS)
#: Aggregate rows are sorted by (state, server_v4) in small row groups, so a
#: query for one state and IPv4 networks skips most of a file unread.
ROW_GROUP = {SERVERS: 2048, CLIENTS: 16384}
_STATISTICS = ["sensor", "state", "server_v4", "first_seen"]
_TIMES = ("first_seen", "last_seen", "reply_ts")
FORMAT_KEY = b"synack.aggregate_format"
#: Bumped whenever the aggregate files' layout changes (`synack rebuild` redoes them).
AGGREGATE_FORMAT = b"6"

#: Coarse partials of one size tier merged at once (tiered compaction: a
#: row is rewritten about log_FANOUT(day's rows / TIER_BASE_ROWS) times).
FANOUT = 8
TIER_BASE_ROWS = 1000
#: A merge reads at most this many aggregate rows (servers + clients), which
#: bounds its memory (~300 bytes a row at its peak): a larger day keeps
#: several coarse partials, merged when read.
MERGE_ROWS = 800_000
#: A partial's client rows are merged no more from this many on: client pairs
#: that many rarely repeat in other chunks (merging eight such partials
#: saved a quarter of their rows on the bench's network, against 5x for the
#: server rows), and their merge was most of an ingest's compaction work.
#: Its server rows go on being merged (a "servers merge"), so whole-day
#: server queries still read few rows.
LARGE_CLIENT_ROWS = 32_000
#: Which kinds of whole-day reads (the coarse layer) use a partial's files: flags.
COARSE_SERVERS, COARSE_CLIENTS = 1, 2
COARSE = COARSE_SERVERS | COARSE_CLIENTS
#: The flag of each kind.
COARSE_FLAG = {SERVERS: COARSE_SERVERS, CLIENTS: COARSE_CLIENTS}
#: Fine partials of a finished source are merged when they average fewer records.
FINE_BELOW_RECORDS = 20_000


class TwoFiles:
    """What a partial and a roll-up share: a servers and a clients file, with their rows and stamps."""

    server_rows: int
    client_rows: int
    server_stamp: FileStamp | None
    client_stamp: FileStamp | None

    @property
    def rows(self) -> int:
        return self.server_rows + self.client_rows

    def stamps(self) -> list[FileStamp | None]:
        """The stamps of its servers and clients files."""
        return [self.server_stamp, self.client_stamp]

    def stamp(self, kind: str) -> FileStamp | None:
        return self.server_stamp if kind == SERVERS else self.client_stamp

    def kind_rows(self, kind: str) -> int:
        return self.server_rows if kind == SERVERS else self.client_rows

    def paths(self, root: PurePath) -> list[PurePath]:
        """Its servers and clients files (in KINDS order)."""
        raise NotImplementedError

    def file(self, root: PurePath, kind: str) -> tuple[PurePath, FileStamp | None, int]:
        """(path, stamp, rows) of its `kind` file: what read_aggregate verifies it by."""
        return self.paths(root)[KINDS.index(kind)], self.stamp(kind), self.kind_rows(kind)


@dataclass(frozen=True)
class Partial(TwoFiles):
    """One partial aggregate, as the ledger's `partials` table records it."""

    name: str
    day: str
    source_id: str  # "" for a coarse merge of several sources
    chunk_lo: int
    chunk_hi: int
    t_min: int  # µs since the epoch: the earliest and latest record covered
    t_max: int
    server_rows: int
    client_rows: int
    records: int
    level: int = 0
    fine: bool = True
    coarse: int = COARSE  # COARSE_SERVERS | COARSE_CLIENTS: the kinds whole-day reads take from it
    server_stamp: FileStamp | None = None  # its files' stamps (None: written before stamps)
    client_stamp: FileStamp | None = None

    def paths(self, root: PurePath) -> list[PurePath]:
        """Its servers and clients files."""
        return [partial_path(root, kind, self.day, self.name) for kind in KINDS]


def partial_path(root: PurePath, kind: str, day: str, name: str) -> PurePath:
    """Where the `kind` ("servers" or "clients") file of a partial lives."""
    return root / AGGREGATES_DIR / kind / f"date={day}" / f"{name}.parquet"


def write_aggregate(store: StoreFS, table: pa.Table, kind: str, path: PurePath) -> FileStamp:
    """Write one aggregate file at `path` of `store` (the caller picks a temporary name); return its stamp."""
    table = table.replace_schema_metadata({FORMAT_KEY: AGGREGATE_FORMAT})
    return store.write_parquet(table, path, row_group_size=ROW_GROUP[kind], **aggregate_options(kind))


def aggregate_options(kind: str) -> dict[str, Any]:
    """The Parquet writer's options of a `kind` aggregate file (page checksums are the writer's: parquet_bytes)."""
    # No Parquet dictionaries: zstd takes the repeats as well (files within
    # 1-3% of the dictionary-encoded size) for a fifth less writing time.
    # Times delta-encoded: 15% smaller client files, written 8% faster.
    schema = schema_of(kind)
    times = {name: "DELTA_BINARY_PACKED" for name in _TIMES if name in schema.names}
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": False,
        "column_encoding": times,
        "write_statistics": _STATISTICS,
    }


@dataclass(frozen=True)
class DayRecords:
    """One UTC day's records of a chunk, with their aggregates: what a commit writes for that day."""

    day: str  # YYYY-MM-DD
    records: pa.Table
    servers: pa.Table
    clients: pa.Table


def by_day(records: pa.Table | None) -> list[DayRecords]:
    """`records` split by UTC day, each day aggregated (pure: run on the
    parse threads, so the writer thread only writes)."""
    if records is None or not len(records):
        return []
    days = pc.cast(records.column("ts"), pa.date32())
    unique = sorted(pc.unique(days).to_pylist())
    parts = (
        [records] if len(unique) == 1 else [records.filter(pc.equal(days, pa.scalar(d, pa.date32()))) for d in unique]
    )
    return [
        DayRecords(d.isoformat(), part, *aggregate_day(part.select(RECORD_COLUMNS))) for d, part in zip(unique, parts)
    ]


def write_partial(
    store: StoreFS, name: str, day: str, source_id: str, chunks: tuple[int, int], records: pa.Table,
    aggregates: tuple[pa.Table, pa.Table] | None = None,
) -> Partial:  # fmt: skip
    """Write the partial of one day's `records` (of `chunks` of `source_id`)
    under temporary names: `aggregates` (servers, clients) when computed
    already, else aggregated here. Return its ledger row (fine and coarse)."""
    servers, clients = aggregates if aggregates is not None else aggregate_day(records.select(RECORD_COLUMNS))
    stamps = [write_aggregate(store, table, kind, tmp_name(partial_path(store.root, kind, day, name)))
              for table, kind in ((servers, SERVERS), (clients, CLIENTS))]  # fmt: skip
    return Partial(name, day, source_id, chunks[0], chunks[1], *_time_bounds(records), len(servers),
                   len(clients), len(records), server_stamp=stamps[0], client_stamp=stamps[1])  # fmt: skip


def _time_bounds(records: pa.Table) -> tuple[int, int]:
    bounds = pc.min_max(records.column("ts").cast(pa.int64()))
    return int(bounds["min"].as_py() or 0), int(bounds["max"].as_py() or 0)


def read_aggregate(store: StoreFS, path: PurePath, kind: str, stamp: FileStamp | None, rows: int) -> pa.Table:
    """One `kind` aggregate file (of a partial or a roll-up), whole, verified
    against its `stamp` and `rows` (StoreFS.read_verified: raises
    FileNotFoundError or FileDamaged)."""
    return store.read_verified(path, stamp, rows, schema=schema_of(kind))


def read_partial(store: StoreFS, partial: Partial, kind: str) -> pa.Table:
    """The `kind` file of `partial`, whole and verified (read_aggregate)."""
    path = partial_path(store.root, kind, partial.day, partial.name)
    return read_aggregate(store, path, kind, partial.stamp(kind), partial.kind_rows(kind))


def merge_partials(store: StoreFS, members: list[Partial], *, fine: bool) -> Partial:
    """Merge `members` (partials of one day) into a new partial written under
    temporary names; return its ledger row: a fine one (members of one
    source, adjacent chunks) or a coarse one of the next level (of the
    kinds merged_kinds says)."""
    name = merged_name(members, fine=fine)
    written = {kind: merge_kind(store, members, kind, name, fine=fine) for kind in KINDS}
    return merged_partial(members, name, written, fine=fine)


def merged_kinds(members: list[Partial], *, fine: bool) -> tuple[str, ...]:
    """The kinds a merge of `members` merges: both, but only the servers of
    coarse partials whose clients are left as they are (a servers merge:
    any member not coarse for both kinds, or with LARGE_CLIENT_ROWS client
    rows; coarse_merges never mixes the two)."""
    if fine or all(p.coarse == COARSE and p.client_rows < LARGE_CLIENT_ROWS for p in members):
        return KINDS
    return (SERVERS,)


def merged_name(members: list[Partial], *, fine: bool) -> str:
    """The name of the partial that merges `members` (fixed by them, so a
    retried merge writes the same files)."""
    lo, hi = min(p.chunk_lo for p in members), max(p.chunk_hi for p in members)
    if fine:
        return f"{members[0].source_id}-f{lo:06d}-{hi:06d}"
    digest = hashlib.sha256("\n".join(sorted(p.name for p in members)).encode()).hexdigest()[:12]
    prefix = "m" if merged_kinds(members, fine=False) == KINDS else "s"
    return f"{prefix}{max(p.level for p in members) + 1}-{lo:06d}-{hi:06d}-{digest}"


def merge_kind(store: StoreFS, members: list[Partial], kind: str, name: str, *, fine: bool = False
               ) -> tuple[int, FileStamp]:  # fmt: skip
    """Merge the `kind` ("servers" or "clients") files of `members` into the
    `kind` file of the partial `name`, under its temporary name; return its
    rows and stamp. A kind that merged_kinds leaves out gets an empty file (a partial
    always has both; whole-day reads take that kind from the members). The
    two kinds of a merge are independent: they may run at once."""
    merge = merger(kind)
    day = members[0].day
    merged = merge([read_partial(store, p, kind) for p in members] if kind in merged_kinds(members, fine=fine) else [])
    stamp = write_aggregate(store, merged, kind, tmp_name(partial_path(store.root, kind, day, name)))
    return len(merged), stamp


def merged_partial(members: list[Partial], name: str, written: dict[str, tuple[int, FileStamp]], *,
                   fine: bool) -> Partial:  # fmt: skip
    """The ledger row of the partial `name` that merges `members`, whose
    files were `written` (rows and stamp of each kind): a fine one, or a
    coarse one for the kinds merged."""
    level = 0 if fine else max(p.level for p in members) + 1
    coarse = 0 if fine else sum(COARSE_FLAG[kind] for kind in merged_kinds(members, fine=False))
    return Partial(
        name, members[0].day, members[0].source_id if fine else "", min(p.chunk_lo for p in members),
        max(p.chunk_hi for p in members), min(p.t_min for p in members), max(p.t_max for p in members),
        written[SERVERS][0], written[CLIENTS][0], sum(p.records for p in members), level, fine=fine, coarse=coarse,
        server_stamp=written[SERVERS][1], client_stamp=written[CLIENTS][1],
    )  # fmt: skip


def size_tier(rows: int) -> int:
    """The size class of a partial of `rows` rows: FANOUT partials of one tier make one of a higher tier."""
    return max(0, math.floor(math.log(max(rows, 1) / TIER_BASE_ROWS, FANOUT)))


def _server_weight(partial: Partial) -> int:
    """What a servers merge reads of a partial, bounded: its server rows and
    their client lists (an entry per client pair, at most one per record)."""
    return partial.server_rows + partial.records


def _all_rows(partial: Partial) -> int:
    return partial.rows


def coarse_merges(partials: Iterable[Partial], settled: bool) -> list[list[Partial]]:
    """The merges that tiered compaction should run on one day's coarse partials.

    Size-tiered: FANOUT partials of one size tier become one of a higher
    tier, oldest first, as long as a merge reads at most MERGE_ROWS rows; a
    small append is merged with other small ones, never with a large
    partial, so its cost follows its size. A `settled` day (no more records
    expected) is merged as far as MERGE_ROWS allows, whatever the tiers, so
    a finished day is read from as few files as its size allows.

    Partials coarse for both kinds with fewer than LARGE_CLIENT_ROWS client
    rows are merged whole; the server rows of the others are merged apart
    (servers merges, sized by their server rows and client lists; see
    merged_kinds).
    """
    coarse = sorted((p for p in partials if p.coarse), key=lambda p: (p.t_min, p.name))
    whole: list[Partial] = []
    servers: list[Partial] = []
    for p in coarse:
        if merged_kinds([p], fine=False) == KINDS:
            whole.append(p)
        elif p.coarse & COARSE_SERVERS:
            servers.append(p)
    return _tiered(whole, settled, _all_rows) + _tiered(servers, settled, _server_weight)


def _tiered(partials: list[Partial], settled: bool, rows: Callable[[Partial], int]) -> list[list[Partial]]:
    """coarse_merges of `partials` (oldest first), sized by `rows`."""
    if settled:
        return _greedy(partials, rows)
    plans: list[list[Partial]] = []
    for tier in sorted({size_tier(rows(p)) for p in partials}):
        same = [p for p in partials if size_tier(rows(p)) == tier]
        while len(same) >= FANOUT:
            group, same = same[:FANOUT], same[FANOUT:]
            if sum(rows(p) for p in group) <= MERGE_ROWS:
                plans.append(group)
    return plans


def _greedy(partials: list[Partial], rows: Callable[[Partial], int] = _all_rows) -> list[list[Partial]]:
    """Consecutive groups of at least two partials, each under MERGE_ROWS rows."""
    plans: list[list[Partial]] = []
    group: list[Partial] = []
    for p in partials:
        if group and sum(rows(q) for q in group) + rows(p) > MERGE_ROWS:
            if len(group) > 1:
                plans.append(group)
            group = []
        group.append(p)
    if len(group) > 1:
        plans.append(group)
    return plans


def fine_merges(partials: Iterable[Partial]) -> list[list[Partial]]:
    """The groups of fine partials of one finished source and day to merge
    (adjacent chunks, each group under MERGE_ROWS); none when they are
    already large (a batch ingest's chunks)."""
    fine = sorted((p for p in partials if p.fine), key=lambda p: p.chunk_lo)
    if len(fine) < 2 or sum(p.records for p in fine) / len(fine) >= FINE_BELOW_RECORDS:
        return []
    return _greedy(fine)


def sensor_counts(day: str, records: pa.Table) -> list[tuple[str, str, int, int]]:
    """(day, sensor, records, newest µs) per sensor of one day's records ("" for no sensor)."""
    sensor = records.column("sensor")
    if pa.types.is_dictionary(sensor.type):
        sensor = sensor.cast(sensor.type.value_type)
    table = pa.table({"sensor": pc.fill_null(sensor, ""), "ts": records.column("ts").cast(pa.int64())})
    counts = table.group_by("sensor", use_threads=False).aggregate([("ts", "count"), ("ts", "max")])
    return [(day, s, int(n), int(t)) for s, n, t in zip(*(counts.column(c).to_pylist() for c in
                                                            ("sensor", "ts_count", "ts_max")))]  # fmt: skip
