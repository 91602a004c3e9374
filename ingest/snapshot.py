"""A read-only snapshot of a store: what every answer is computed from.

`take_snapshot` reads the store's marker (ingest.store_identity) and then
its ledger, once, in one transaction; the Snapshot holds what the ledger
said (days, partials per layer, roll-ups, sensors, sources, record and
notice files, with their stamps) and reads the files it names, each one
verified against the size and CRC the ledger recorded and every Parquet
page against its checksum. This module is the store's published contract:
with ingest.aggregates (the aggregate rows' schemas and merges) it is
everything the inventory uses of `ingest` (besides the error base and the
text-escaping and address helpers every output shares); it re-exports the
layout names a reader needs (`locate`, `StoreFS`, `Partial`, `Rollup`,
`FileStamp`, the aggregate kinds, the record, notice and identity schemas
and the identity facts' merge, `merged_facts`).

A writer never deletes a file a snapshot may name at once: a file it
replaces is retired (moved to a hidden name, deleted after a grace
period), and a file committed but not yet moved into place is read under
its temporary name. So a file a snapshot cannot read means one of two
things, which the reader tells apart by asking the ledger again: the store
changed under a long query (StoreChanged: "run it again"), or the file is
damaged (DamagedFile: "synack check --repair"). Neither is ever answered
with a wrong result.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synack.ingest.chunk_files import QUARANTINE_DIR
from synack.ingest.errors import StoreError
from synack.ingest.ledger import LedgerState, listed_now, read_state
from synack.ingest.partials import CLIENTS, COARSE_FLAG, SERVERS, Partial, partial_path
from synack.ingest.rollups import Rollup, rollup_path
from synack.ingest.schema import CORE_SCHEMA, TIMESTAMP
from synack.ingest.sensor_notices import NOTICE_SCHEMA, NOTICES_DIR
from synack.ingest.server_identity import IDENTITY_DIR, IDENTITY_SCHEMA, merged_facts
from synack.ingest.sightings import RANGE_ONLY
from synack.ingest.store_files import FileDamaged, FileStamp, StoreFS, locate
from synack.ingest.store_identity import check_ledger, read_marker

__all__ = [
    "CLIENTS", "COARSE_FLAG", "CORE_SCHEMA", "IDENTITY_SCHEMA", "NOTICE_SCHEMA", "SERVERS", "TIMESTAMP", "DamagedFile",
    "FileStamp", "NoStore", "Partial", "RANGE_ONLY", "Rollup", "Snapshot", "StoreChanged", "StoreFS", "locate",
    "merged_facts", "take_snapshot",
]  # fmt: skip


class StoreChanged(StoreError):
    """A file the snapshot names was replaced and its grace period is over: the query must run again."""


class DamagedFile(StoreError):
    """A file the ledger lists is missing or does not hold what the ledger recorded."""


class NoStore(StoreError):
    """No store (or no ledger) at the location."""


#: Bytes of aggregate tables a snapshot keeps after reading them: the
#: questions of one answer (a report asks about each of eight days, and
#: each of them reads the days after the years' sightings again) read the
#: same few files many times; a table larger than a quarter of this is
#: never kept, so the memory a query streams through stays its own.
READ_CACHE_BYTES = 64 << 20
#: Bytes of verified files a snapshot keeps: one answer reads the same
#: file again with other filters (a year's server sightings, once per
#: question of a host view), which then costs a parse, not a read and a
#: checksum of the whole file; a file larger than half of this is never kept.
VERIFIED_CACHE_BYTES = 32 << 20
#: Bytes of files too large to keep that a footer was verified from, held
#: for the read that follows (a question weighs its range's rows from the
#: footers, then reads the same files): each is read and checksummed once.
LENT_BYTES = 64 << 20


class _ReadCache:
    """The aggregate tables a snapshot read last, up to READ_CACHE_BYTES, and
    the verified bytes of the files it read last, up to VERIFIED_CACHE_BYTES
    (least recently used out first). A table is kept from its second read
    on: a question that streams through files once (a year's `clients`)
    keeps none, whose tables would hold the heap's pages, not save a read."""

    def __init__(self) -> None:
        self.tables: OrderedDict[tuple[str, ...], pa.Table] = OrderedDict()
        self.asked: set[tuple[str, ...]] = set()  # the reads made once
        self.bytes = 0
        self.hits = 0
        self.verified: OrderedDict[str, pa.Buffer] = OrderedDict()  # file -> its verified bytes
        self.verified_bytes = 0
        self.footers: dict[str, pq.FileMetaData] = {}  # file -> its footer (a few kB each)
        self.lent: dict[str, pa.Buffer] = {}  # file too large to keep -> its bytes, verified for a footer
        self.derived: dict[tuple[str, ...], pa.Table] = {}  # small tables made from files (a reader's own keys)

    def kept_bytes(self, rel: str) -> pa.Buffer | None:
        """The verified bytes of file `rel` when kept (see VERIFIED_CACHE_BYTES)."""
        data = self.verified.get(rel)
        if data is not None:
            self.verified.move_to_end(rel)
        return data

    def keep_bytes(self, rel: str, data: pa.Buffer) -> None:
        """Keep the verified bytes of file `rel` (see VERIFIED_CACHE_BYTES)."""
        if len(data) * 2 > VERIFIED_CACHE_BYTES:
            return
        self.verified[rel] = data
        self.verified_bytes += len(data)
        while self.verified_bytes > VERIFIED_CACHE_BYTES:
            _, old = self.verified.popitem(last=False)
            self.verified_bytes -= len(old)

    def lend_bytes(self, rel: str, data: pa.Buffer) -> None:
        """Hold the verified bytes of file `rel`, too large to keep, until
        its next read (take_bytes), while they fit in LENT_BYTES."""
        if len(data) + sum(len(b) for b in self.lent.values()) <= LENT_BYTES:
            self.lent[rel] = data

    def take_bytes(self, rel: str) -> pa.Buffer | None:
        """The verified bytes of file `rel` when kept or lent (a lent file's are given once)."""
        data = self.kept_bytes(rel)
        return data if data is not None else self.lent.pop(rel, None)

    def get(self, key: tuple[str, ...]) -> pa.Table | None:
        table = self.tables.get(key)
        if table is not None:
            self.tables.move_to_end(key)
            self.hits += 1
        return table

    def put(self, key: tuple[str, ...], table: pa.Table) -> None:
        size = table.nbytes
        if size * 4 > READ_CACHE_BYTES:
            return
        if key not in self.asked:
            self.asked.add(key)
            return
        self.tables[key] = table
        self.bytes += size
        while self.bytes > READ_CACHE_BYTES:
            _, old = self.tables.popitem(last=False)
            self.bytes -= old.nbytes


@dataclass(frozen=True)
class Snapshot:
    """One state of a store's ledger, and verified reads of the files it names."""

    state: LedgerState
    cache: _ReadCache = field(default_factory=_ReadCache, compare=False, repr=False)

    @property
    def files(self) -> StoreFS:
        return self.state.files

    def __str__(self) -> str:
        return str(self.files)

    # -- what the ledger said -------------------------------------------------

    @property
    def version(self) -> int:
        return self.state.version

    @property
    def generation(self) -> int:
        return self.state.generation

    @property
    def generations(self) -> dict[str, int]:
        """Each day's generation."""
        return {day: g for day, (g, _) in self.state.days.items()}

    @property
    def partials(self) -> tuple[Partial, ...]:
        return self.state.partials

    @property
    def rollups(self) -> dict[str, Rollup]:
        return self.state.rollups

    def day_sensors(self) -> list[tuple[str, str, int, int]]:
        """(day, sensor, records, newest record µs) per day and sensor ("" for records without a sensor)."""
        return [(s.day, s.sensor, s.rows, s.newest) for s in self.state.day_sensors]

    def sources_summary(self) -> dict[str, Any]:
        """How many log sources were ingested, the lines they quarantined, and the last ingest (UTC ISO text)."""
        s = self.state.sources
        return {"sources": s.sources, "quarantined_lines": s.quarantined_lines, "last_ingest": s.last_ingest}

    def notice_count(self) -> int:
        """How many sensor notices the store keeps."""
        return sum(f.rows for f in self.state.under(NOTICES_DIR))

    def identity_count(self) -> int:
        """How many identity facts the store keeps (ingest.server_identity; counted per file)."""
        return sum(f.rows for f in self.state.under(IDENTITY_DIR))

    def quarantine_counts(self) -> list[tuple[str, str, int]]:
        """(log file, reason, lines) of the lines set aside, most lines first (ingest.quarantine_replay)."""
        from synack.ingest.quarantine_replay import quarantine_counts

        return quarantine_counts(self.files, [f.path for f in self.state.under(QUARANTINE_DIR)])

    def record_days(self) -> list[str]:
        """Every day with record files."""
        return sorted({f.day for f in self.state.record_files if f.day is not None})

    def record_files(self, day: str, source_id: str | None = None, chunks: tuple[int, int] | None = None
                     ) -> list[tuple[str, FileStamp | None, int]]:  # fmt: skip
        """(path, stamp, rows) of a day's record files (of one source's `chunks`, when given)."""
        return [
            (f.path, f.stamp, f.rows) for f in self.state.record_files
            if f.day == day and (source_id is None or f.source_id == source_id)
            and (chunks is None or chunks[0] <= f.chunk <= chunks[1])
        ]  # fmt: skip

    # -- verified reads -------------------------------------------------------

    def read(self, rel: str, stamp: FileStamp | None, rows: int | None, **options: Any) -> pa.Table:
        """`pq.read_table(**options)` of the file `rel` (relative to the root)
        as this snapshot knows it, verified. Raises StoreChanged or DamagedFile."""
        with self._reading(rel, stamp):
            return self.files.parsed(self.files.root / rel, self._verified(rel, stamp), rows, **options)

    def footer(self, rel: str, stamp: FileStamp | None, rows: int | None) -> pq.FileMetaData:
        """The Parquet footer of the file `rel` (its row groups' rows, values
        and statistics), verified as `read` verifies the file, whose bytes
        are kept alike: a read of the file that follows costs a parse.
        Raises StoreChanged or DamagedFile."""
        metadata = self.cache.footers.get(rel)
        if metadata is not None:
            return metadata
        with self._reading(rel, stamp):
            data = self._verified(rel, stamp)
            if self.cache.kept_bytes(rel) is None:
                self.cache.lend_bytes(rel, data)
            metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
            if rows is not None and metadata.num_rows != rows:
                raise FileDamaged(self.files.root / rel, f"holds {metadata.num_rows} rows, the ledger says {rows}")
        self.cache.footers[rel] = metadata
        return metadata

    def row_groups(self, rel: str, stamp: FileStamp | None, rows: int | None,
                   schema: pa.Schema | None = None) -> Iterator[pa.Table]:  # fmt: skip
        """The file `rel` one row group at a time (every column, as `schema`
        has them when given: cast, or null where the file has none),
        verified as `read` verifies it (its bytes against `stamp`, every
        page's checksum, its rows against `rows`). Raises StoreChanged or DamagedFile."""
        path = self.files.root / rel
        with self._reading(rel, stamp):
            parquet = pq.ParquetFile(pa.BufferReader(self.files.verified_bytes(path, stamp)),
                                     page_checksum_verification=True)  # fmt: skip
            if rows is not None and parquet.metadata.num_rows != rows:
                raise FileDamaged(path, f"holds {parquet.metadata.num_rows} rows, the ledger says {rows}")
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                yield table if schema is None else _conformed(table, schema)

    def _verified(self, rel: str, stamp: FileStamp | None) -> pa.Buffer:
        """The verified bytes of the file `rel`, kept a while (VERIFIED_CACHE_BYTES) or lent (LENT_BYTES)."""
        data = self.cache.take_bytes(rel)
        if data is None:
            data = self.files.verified_bytes(self.files.root / rel, stamp)
            self.cache.keep_bytes(rel, data)
        return data

    @contextlib.contextmanager
    def _reading(self, rel: str, stamp: FileStamp | None) -> Iterator[None]:
        """Run a block that reads the file `rel`: what it raises becomes StoreChanged or DamagedFile."""
        path = self.files.root / rel
        try:
            yield
        except FileNotFoundError:
            raise self._unreadable(path, stamp, "missing") from None
        except FileDamaged as err:
            raise self._unreadable(path, stamp, err.why) from None
        except (pa.ArrowException, ValueError) as err:
            raise self._unreadable(path, stamp, f"unreadable ({' '.join(str(err).split())[:160]})") from None
        except OSError as err:
            raise DamagedFile(f"cannot read {rel} of store {self.files}: {err.strerror or err}") from None

    def read_partial(self, kind: str, partial: Partial, **options: Any) -> pa.Table:
        """The `kind` file of one partial, verified (see `read`; kept a while, see READ_CACHE_BYTES)."""
        return self._kept(self.partial_file(kind, partial), partial.stamp(kind), partial.kind_rows(kind), options)

    def read_rollup(self, kind: str, rollup: Rollup, **options: Any) -> pa.Table:
        """The `kind` file of one roll-up (or year's sightings), verified (see `read_partial`)."""
        return self._kept(self.rollup_file(kind, rollup), rollup.stamp(kind), rollup.kind_rows(kind), options)

    def partial_file(self, kind: str, partial: Partial) -> str:
        """The `kind` file of a partial, relative to the root."""
        return self.files.rel(partial_path(self.files.root, kind, partial.day, partial.name))

    def rollup_file(self, kind: str, rollup: Rollup) -> str:
        """The `kind` file of a roll-up (or year's sightings), relative to the root."""
        return self.files.rel(rollup_path(self.files.root, kind, rollup.month, rollup.name))

    def _kept(self, rel: str, stamp: FileStamp | None, rows: int | None, options: dict[str, Any]) -> pa.Table:
        """`read` of an aggregate file, answered from the snapshot's cache when
        the same read was made lately (the files a snapshot names never change)."""
        key = (rel, *(f"{name}={_option_key(value)}" for name, value in sorted(options.items())))
        table = self.cache.get(key)
        if table is None:
            table = self.read(rel, stamp, rows, **options)
            self.cache.put(key, table)
        return table

    def read_notices(self, schema: pa.Schema) -> pa.Table:
        """Every sensor-notice file, verified, as one table of `schema`."""
        tables = [self.read(f.path, f.stamp, f.rows, schema=schema) for f in self.state.under(NOTICES_DIR)
                  if f.path.endswith(".parquet")]  # fmt: skip
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def read_identity(self) -> pa.Table:
        """Every identity file, verified, as one table of IDENTITY_SCHEMA (facts not yet merged across files)."""
        tables = [self.read(f.path, f.stamp, f.rows, schema=IDENTITY_SCHEMA) for f in self.state.under(IDENTITY_DIR)]
        return pa.concat_tables(tables) if tables else IDENTITY_SCHEMA.empty_table()

    def _unreadable(self, path: PurePath, stamp: FileStamp | None, why: str) -> StoreError:
        """The error for a file this snapshot names but cannot read: the
        store changed under the query when the ledger no longer lists it
        with this stamp, else the file is damaged."""
        rel = self.files.rel(path)
        now = listed_now(self.files)
        if now is not None and (rel not in now or now[rel] != stamp):
            return StoreChanged(f"the store {self.files} changed under this query ({rel} was replaced); run it again")
        return DamagedFile(
            f"{rel} of store {self.files} is damaged ({why}); synack will not answer from it: run "
            "`synack check --repair`"
        )


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with the columns of `schema`, of its types (null where
    `table` has none), as a read with `schema` gives."""
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


def _option_key(value: Any) -> str:
    """A read option (columns, filters, a schema) as part of a cache key: its text."""
    return str(value)


def take_snapshot(files: StoreFS) -> Snapshot:
    """The store `files` as its ledger says it is now, read once.

    Raises NoStore when there is no store (or no ledger beside records),
    StoreError when the ledger cannot be read, is not this store's or is
    behind it (ingest.store_identity)."""
    if not files.ledger.exists():
        try:
            records = files.files_under(files.root / "conn")
        except OSError as err:
            raise NoStore(f"cannot read the store {files}: {err}") from None
        if records:
            raise NoStore(f"the store {files} holds records but no ledger {files.ledger}: it is damaged")
        raise NoStore(f"no synack store at {files} (run 'synack ingest' first, or pass --store)")
    try:
        marker = read_marker(files)  # before the ledger: a marker is never ahead of the ledger it follows
    except OSError as err:
        raise StoreError(f"cannot read the store {files}: {err}") from None
    state = read_state(files)
    check_ledger(files, state.store_id, state.generation, marker, writing=False)
    return Snapshot(state)
