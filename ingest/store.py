"""The store: Hive-partitioned Parquet files and the ledger that owns them.

Layout (DESIGN.md):

    conn/date=YYYY-MM-DD/<source-id>-<chunk>.parquet
    aggregates/servers/date=YYYY-MM-DD/<partial>.parquet
    aggregates/clients/date=YYYY-MM-DD/<partial>.parquet
    rollups/servers/month=YYYY-MM/<roll-up>.parquet
    rollups/clients/month=YYYY-MM/<roll-up>.parquet
    quarantine/<source-id>-<chunk>.jsonl
    notices/<source-id>-<chunk>.parquet          the sensor's SynAck notices (notice.log)
    ledger.sqlite
    lock

A *partial* is the pair of aggregates (ingest.aggregates) of a set of one
day's chunks. Every committed chunk brings one partial per day it touches,
computed from its records while they are in memory and committed in the
same transaction. The ledger's `partials` table says which partials make
up a day, in two layers, each covering every chunk of the day exactly once:
the *coarse* layer (few, large partials: what whole-day queries read) and
the *fine* layer (per chunk, or per finished source: what a query whose
range cuts a day reads, re-aggregating only the records of the partials
that straddle its edge). A new chunk's partial is in both layers;
compaction (planned in ingest.partials) merges partials in either layer and swaps
them in one transaction, so readers see the old or the new set. Settled
days are further merged into one *roll-up* per month (ingest.rollups), which
long-range queries read instead of the days it covers.

The ledger is the single truth of what is in the store. A chunk is
committed in three steps: (1) its files are written under temporary names
(a leading dot, so Parquet readers skip them) and fsynced; (2) one SQLite
transaction records the files and the source's new offset; (3) the files
are renamed into place. A crash before (2) leaves only temporary files,
which recovery deletes; a crash after (2) leaves committed files still
under their temporary names, which recovery renames. Either way the store
holds exactly the old or the new state, and re-reading a source resumes
at the committed offset, so nothing is lost or counted twice.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import itertools
import json
import os
import signal
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from synack.ingest.aggregates import RECORD_COLUMNS
from synack.ingest.errors import StoreError, StoreLocked
from synack.ingest.line_parsing import Quarantined
from synack.ingest.partials import (
    AGGREGATES_DIR,
    COARSE,
    KINDS,
    DayRecords,
    Partial,
    by_day,
    coarse_merges,
    fine_merges,
    merge_kind,
    merge_partials,
    merged_name,
    merged_partial,
    partial_path,
    sensor_counts,
    write_partial,
)
from synack.ingest.rollups import (
    ROLLUPS_DIR,
    SELECT_ROLLUPS,
    Rollup,
    month_of,
    parse_rollups,
    plan_steps,
    settled_before,
    write_rollup,
)
from synack.ingest.sensor_notices import NOTICES_DIR
from synack.ingest.store_files import LEDGER, LOCK, StoreFS, locate, tmp_name

CONN_DIR = "conn"
QUARANTINE_DIR = "quarantine"
# LEDGER's tables: sources, chunks, files, days, day_sensors, partials, rollups
#: The ledger's schema version (PRAGMA user_version); see _MIGRATIONS.
LEDGER_VERSION = 4
PARQUET_COMPRESSION = "zstd"
#: zstd's fastest level: on conn records it writes files as small as Arrow's default level, 20% faster.
PARQUET_COMPRESSION_LEVEL = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    source_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    first_path TEXT NOT NULL,
    last_path TEXT NOT NULL,
    committed_bytes INTEGER NOT NULL,
    next_line INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    header BLOB NOT NULL,
    complete INTEGER NOT NULL,
    first_ingest TEXT NOT NULL,
    last_ingest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    source_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    byte_start INTEGER NOT NULL,
    byte_end INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    committed_at TEXT NOT NULL,
    PRIMARY KEY (source_id, chunk)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    day TEXT,
    rows INTEGER NOT NULL,
    pending INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_pending ON files (pending) WHERE pending = 1;
CREATE TABLE IF NOT EXISTS garbage (
    path TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS files_seen (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    source_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS days (
    day TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
"""

#: Forward migrations: _MIGRATIONS[v] takes a ledger from version v to v + 1.
#: A ledger written before versions existed reads 0 and holds _SCHEMA: version 1.
_MIGRATIONS: dict[int, str] = {
    # 1 -> 2: partial aggregates per chunk, rows and newest record per (day, sensor).
    1: """
CREATE TABLE IF NOT EXISTS partials (
    name TEXT NOT NULL,
    day TEXT NOT NULL,
    source_id TEXT NOT NULL,
    chunk_lo INTEGER NOT NULL,
    chunk_hi INTEGER NOT NULL,
    t_min INTEGER NOT NULL,
    t_max INTEGER NOT NULL,
    server_rows INTEGER NOT NULL,
    client_rows INTEGER NOT NULL,
    records INTEGER NOT NULL,
    level INTEGER NOT NULL,
    fine INTEGER NOT NULL,
    coarse INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    PRIMARY KEY (day, name)
);
CREATE INDEX IF NOT EXISTS partials_pending ON partials (pending) WHERE pending = 1;
CREATE TABLE IF NOT EXISTS day_sensors (
    day TEXT NOT NULL,
    sensor TEXT NOT NULL,
    rows INTEGER NOT NULL,
    newest INTEGER NOT NULL,
    PRIMARY KEY (day, sensor)
);
""",
    # 2 -> 3: monthly roll-ups of settled days (ingest.rollups).
    2: """
CREATE TABLE IF NOT EXISTS rollups (
    month TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    days TEXT NOT NULL,
    server_rows INTEGER NOT NULL,
    client_rows INTEGER NOT NULL,
    pending INTEGER NOT NULL
);
""",
    # 3 -> 4: a partial's coarse flag says which kinds whole-day reads take
    # from it (1 servers, 2 clients: ingest.partials.COARSE_*); 1 meant both.
    3: """
UPDATE partials SET coarse = 3 WHERE coarse = 1;
""",
}


@dataclass(frozen=True)
class SourceState:
    """What the ledger says of one source."""

    source_id: str
    committed_bytes: int
    next_line: int
    chunks: int
    rows: int
    quarantined: int
    header: bytes
    complete: bool


@dataclass(frozen=True)
class ChunkFiles:
    """A chunk's files written under temporary names, not yet committed."""

    planned: list[tuple[PurePath, str | None, int]]  # final path, day (None: quarantine), rows
    rows: int
    quarantined: int
    newest: dt.datetime | None = None  # the latest record time in the chunk
    partials: tuple[Partial, ...] = ()
    sensors: tuple[tuple[str, str, int, int], ...] = ()  # (day, sensor, rows, newest µs)
    notices: int = 0  # sensor notices (a notice log's chunk)


@dataclass(frozen=True)
class CommitResult:
    """What one committed chunk added."""

    rows: int
    quarantined: int
    days: tuple[str, ...]
    newest: dt.datetime | None = None
    notices: int = 0


_FAULTS: dict[str, int] = {}


def _fault(point: str) -> None:
    """Crash here when SYNACK_FAULT names this point ("point:n" = its n-th pass).

    Fault injection for the crash-consistency tests: the process dies with
    SIGKILL exactly between two steps of a commit, as a power cut would.
    """
    spec = os.environ.get("SYNACK_FAULT")
    if not spec or not spec.startswith(point + ":"):
        return
    _FAULTS[point] = _FAULTS.get(point, 0) + 1
    if _FAULTS[point] == int(spec.rsplit(":", 1)[1]):
        os.kill(os.getpid(), signal.SIGKILL)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Store:
    """A synack store (its files at `files`, its ledger); use `Store.open(...)`
    as a context manager, which takes the store's lock and runs recovery."""

    def __init__(self, files: StoreFS, db: sqlite3.Connection, lock_fd: int) -> None:
        self.files = files
        self.root = files.root
        self._db = db
        self._lock_fd = lock_fd

    @classmethod
    @contextmanager
    def open(cls, root: StoreFS | Path | str, *, create: bool = True, ledger: Path | str | None = None
             ) -> Iterator[Store]:  # fmt: skip
        """Open (creating it if `create`) the store at `root` (a directory or
        an object-storage URL, see ingest.store_files) with its ledger at
        `ledger` (default: beside a local store), exclusively.

        Raises StoreLocked when another process holds it, StoreError when
        `root` is not a usable store.
        """
        files = locate(root, ledger)
        _check_location(files, create)
        try:
            files.lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StoreError(f"cannot open store {files}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise StoreLocked(
                f"store {files} is in use by another synack process (pid {holder}); wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        db = sqlite3.connect(files.ledger, isolation_level=None, check_same_thread=False)
        try:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                _migrate(db, files)
                store = cls(files, db, fd)
                store.recover()
            except sqlite3.OperationalError as err:
                raise StoreError(ledger_write_error(files.ledger, err)) from None
            except sqlite3.DatabaseError as err:
                raise StoreError(damaged_ledger(files, err)) from None
            except OSError as err:
                raise StoreError(f"cannot read store {files}: {err}") from None
            yield store
        finally:
            try:
                # Out of WAL mode while no writer holds the store: a read-only
                # reader then needs no -wal/-shm files (and creates none).
                db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:
                pass  # another connection still reads it; WAL stays, which is as safe
            db.close()
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- reading the ledger -------------------------------------------------

    @property
    def ledger(self) -> sqlite3.Connection:
        """The ledger (for the store's checker; writes go through `transaction`)."""
        return self._db

    def source_state(self, source_id: str) -> SourceState | None:
        """Return the ledger's record of `source_id`, or None if never ingested."""
        row = self._db.execute(
            "SELECT source_id, committed_bytes, next_line, chunks, rows, quarantined, header, complete "
            "FROM sources WHERE source_id = ?",
            (source_id,),
        ).fetchone()
        if row is None:
            return None
        return SourceState(row[0], row[1], row[2], row[3], row[4], row[5], bytes(row[6]), bool(row[7]))

    # -- committing ---------------------------------------------------------

    def commit_chunk(
        self,
        source_id: str,
        kind: str,
        path: Path,
        chunk_no: int,
        table: pa.Table | None,
        quarantined: list[Quarantined],
        **offsets: Any,
    ) -> CommitResult:
        """Atomically add one chunk of `source_id` to the store (both steps)."""
        files = write_chunk_files(self.files, source_id, path, chunk_no, by_day(table), quarantined)
        return self.commit_chunk_files(files, source_id, kind, path, chunk_no, **offsets)

    def commit_chunk_files(
        self,
        files: ChunkFiles,
        source_id: str,
        kind: str,
        path: Path,
        chunk_no: int,
        *,
        byte_start: int,
        byte_end: int,
        line_start: int,
        line_end: int,
        header: bytes,
        complete: bool,
    ) -> CommitResult:
        """Record written chunk files in the ledger and publish them (steps 2
        and 3 of a commit). Calls must come in chunk order, one at a time.

        Raises StoreError if the ledger's offset for the source is not
        `byte_start` (another writer got there first); the files are removed.
        """
        planned, quarantined_count = files.planned, files.quarantined
        _fault("files-written")
        rows = files.rows
        now = _now()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            current = db.execute("SELECT committed_bytes FROM sources WHERE source_id = ?", (source_id,)).fetchone()
            if (current[0] if current else 0) != byte_start:
                raise StoreError(f"ledger offset of source {source_id} moved; chunk not committed")
            db.execute(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)",
                (source_id, chunk_no, byte_start, byte_end, line_start, line_end, rows, quarantined_count, now),
            )
            # Each commit that adds records to a day bumps the day's
            # generation: derived per-day aggregates compare it to their own.
            db.executemany(
                "INSERT INTO days VALUES (?, 1, ?) ON CONFLICT(day) DO UPDATE "
                "SET generation = generation + 1, rows = rows + excluded.rows",
                [(day, n) for f, day, n in planned if day is not None],
            )
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,1)",
                [(self.files.rel(f), source_id, chunk_no, day, n) for f, day, n in planned],
            )
            self._insert_partials(files.partials)
            self._add_day_sensors(files.sensors)
            if current is None:
                db.execute(
                    "INSERT INTO sources VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        source_id,
                        kind,
                        str(path),
                        str(path),
                        byte_end,
                        line_end,
                        1,
                        rows,
                        quarantined_count,
                        header,
                        int(complete),
                        now,
                        now,
                    ),
                )
            else:
                db.execute(
                    "UPDATE sources SET last_path=?, committed_bytes=?, next_line=?, chunks=chunks+1, "
                    "rows=rows+?, quarantined=quarantined+?, header=?, complete=?, last_ingest=? WHERE source_id=?",
                    (str(path), byte_end, line_end, rows, quarantined_count, header, int(complete), now, source_id),
                )
            _fault("before-ledger-commit")
            db.execute("COMMIT")
        except BaseException as err:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk)
                db.execute("ROLLBACK")
            _remove_temporaries(
                self.files, [f for f, _, _ in planned] + [f for p in files.partials for f in p.paths(self.root)]
            )
            if isinstance(err, sqlite3.OperationalError):
                raise StoreError(ledger_write_error(self.files.ledger, err)) from None
            raise
        _fault("ledger-committed")
        self._publish([f for f, _, _ in planned])
        self._publish_partials(files.partials)
        days = tuple(sorted({d for _, d, _ in planned if d is not None}))
        return CommitResult(rows, quarantined_count, days, files.newest, files.notices)

    def quarantine_file(self, source_path: Path, reason: str) -> PurePath:
        """Record a whole file that cannot be read; return the quarantine file.

        The record's name derives from the file's path, so re-running
        replaces it rather than adding a second one.
        """
        digest = hashlib.sha256(str(source_path.resolve()).encode()).hexdigest()[:24]
        final = self.root / QUARANTINE_DIR / f"file-{digest}.jsonl"
        _write_quarantine(self.files, [Quarantined(0, reason, b"")], source_path, tmp_name(final))
        self.files.move(tmp_name(final), final)
        self.files.sync_dirs([final.parent])
        return final

    def file_unchanged(self, path: Path, size: int, mtime_ns: int) -> bool:
        """True when `path` was read to its end at exactly this size and mtime."""
        row = self._db.execute(
            "SELECT 1 FROM files_seen WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path.resolve()), size, mtime_ns),
        ).fetchone()
        return row is not None

    def remember_file(self, path: Path, size: int, mtime_ns: int, source_id: str) -> None:
        """Record that `path` (this size and mtime) holds nothing more to read."""
        self._db.execute(
            "INSERT OR REPLACE INTO files_seen VALUES (?, ?, ?, ?)", (str(path.resolve()), size, mtime_ns, source_id)
        )

    def mark_complete(self, source_id: str) -> None:
        """Record that `source_id` was read to its end (nothing more will come)."""
        self._db.execute("UPDATE sources SET complete = 1 WHERE source_id = ?", (source_id,))

    def _insert_partials(self, partials: tuple[Partial, ...] | list[Partial]) -> None:
        """Record partials as pending (inside the caller's transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO partials VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
            [(p.name, p.day, p.source_id, p.chunk_lo, p.chunk_hi, p.t_min, p.t_max, p.server_rows, p.client_rows,
              p.records, p.level, int(p.fine), int(p.coarse)) for p in partials],
        )  # fmt: skip

    def _add_day_sensors(self, sensors: Iterable[tuple[str, str, int, int]]) -> None:
        """Add (day, sensor, rows, newest µs) counts (inside the caller's transaction)."""
        self._db.executemany(
            "INSERT INTO day_sensors VALUES (?,?,?,?) ON CONFLICT(day, sensor) DO UPDATE "
            "SET rows = rows + excluded.rows, newest = max(newest, excluded.newest)",
            sensors,
        )

    def _publish_partials(self, partials: tuple[Partial, ...] | list[Partial]) -> None:
        """Rename committed partials' files into place, then clear their pending flag."""
        _rename_into_place(self.files, [f for p in partials for f in p.paths(self.root)])
        if partials:
            self._db.executemany(
                "UPDATE partials SET pending = 0 WHERE day = ? AND name = ?", [(p.day, p.name) for p in partials]
            )

    def _publish(self, finals: list[PurePath]) -> None:
        """Move committed record and quarantine files into place, then clear their pending flag."""
        _rename_into_place(self.files, finals)
        if finals:
            self._db.executemany("UPDATE files SET pending = 0 WHERE path = ?", [(self.files.rel(f),) for f in finals])

    # -- compaction ---------------------------------------------------------

    def compact_source(self, source_id: str) -> int:
        """Merge each day's small chunk files of a finished source, and their
        fine partials alike; return the record files removed.

        A live log followed every 30 s leaves one small file per pass; once
        the log is complete, runs of adjacent chunks are merged (each run
        bounded by MERGE_ROWS) into one record file `<source>-c<last>` and
        one fine partial `<source>-f<first>-<last>`, swapped in by one ledger
        transaction. The new files are published before the old ones are
        deleted; a crash anywhere is finished by recovery.
        """
        files = self._db.execute(
            "SELECT path, day, chunk FROM files WHERE source_id = ? AND day IS NOT NULL AND pending = 0",
            (source_id,),
        ).fetchall()
        removed = 0
        for day in sorted({d for _, d, _ in files}):
            fine = self._partials("day = ? AND source_id = ? AND fine = 1 AND pending = 0", (day, source_id))
            for group in fine_merges(fine):
                lo, hi = group[0].chunk_lo, group[-1].chunk_hi
                old = sorted((c, p) for p, d, c in files if d == day and lo <= c <= hi)
                if not old:
                    continue
                merged = (
                    pa.concat_tables(
                        [self.files.read_table(self.root / p) for _, p in old], promote_options="permissive"
                    )  # fmt: skip
                    .unify_dictionaries()
                    .combine_chunks()
                )
                final = self.root / CONN_DIR / f"date={day}" / f"{source_id}-c{hi:06d}.parquet"
                _write_parquet(self.files, merged, tmp_name(final))
                partial = merge_partials(self.files, group, fine=True)
                records = len(merged)
                del merged
                with self.transaction(cleanup=[final, *partial.paths(self.root)]):
                    self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for _, p in old])
                    self._garbage([self.root / p for _, p in old])
                    self._db.execute(
                        "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,1)",
                        (self.files.rel(final), source_id, hi, day, records),
                    )
                    self._retire(group, "fine")
                    self._insert_partials([partial])
                _fault("compaction-committed")
                self._publish([final])
                self._publish_partials([partial])
                self._collect_garbage()
                removed += len(old)
        return removed

    def compact_days(
        self, days: list[str] | set[str], stop: Callable[[], bool] | None = None, runner: MergeRunner | None = None
    ) -> int:
        """Tiered compaction of the coarse partials of `days`; return the merges done.

        A day older than the newest day with records is settled and merged
        as far as MERGE_ROWS allows. Merges are planned in rounds over all
        the days (a day's later merges take its earlier ones' results);
        `runner` runs a round's merges (merge_partials), in any order and on
        any machine that sees the store (the Dask engine's); by default, here,
        one after the other. Each merge is its own transaction, so `stop`
        (asked between merges) ends it promptly and a kill anywhere leaves
        the old or the new set.
        """
        newest = self._db.execute("SELECT max(day) FROM partials").fetchone()[0]
        run = runner or (lambda groups: ((g, merge_partials(self.files, g, fine=False)) for g in groups))
        done = 0
        todo = sorted(days)
        while todo:
            plans: list[list[Partial]] = []
            for day in todo:
                coarse = self._partials("day = ? AND coarse != 0 AND pending = 0", (day,))
                plans.extend(coarse_merges(coarse, settled=newest is not None and day < newest))
            if not plans:
                break
            for group, merged in run(plans):
                if stop is not None and stop():
                    _remove_temporaries(self.files, merged.paths(self.root))
                    return done
                with self.transaction(cleanup=merged.paths(self.root)):
                    self._retire(group, "coarse", merged.coarse)
                    self._insert_partials([merged])
                _fault("merge-committed")
                self._publish_partials([merged])
                self._collect_garbage()
                done += 1
            todo = sorted({group[0].day for group in plans})
        return done

    def roll_up_months(self, stop: Callable[[], bool] | None = None) -> int:
        """Bring the monthly roll-ups up to the settled days (see
        ingest.rollups); return the roll-up merges done. Each merge is its
        own transaction, so `stop` (asked between merges) ends it promptly."""
        newest = self._db.execute("SELECT max(day) FROM partials").fetchone()[0]
        if newest is None:
            return 0
        settled = settled_before(newest)
        done = 0
        while True:
            current = self._rollups()
            generations = dict(self._db.execute("SELECT day, generation FROM days WHERE day < ?", (settled,)))
            coarse: dict[str, list[Partial]] = {}
            for p in self._partials("day < ? AND coarse != 0 AND pending = 0", (settled,)):
                coarse.setdefault(p.day, []).append(p)
            steps = plan_steps(current, generations, coarse, settled)
            if not steps:
                return done
            for step in steps:
                if stop is not None and stop():
                    return done
                rollup = write_rollup(self.files, step)
                old = current.get(step.month)
                with self.transaction(cleanup=rollup.paths(self.root)):
                    if old is not None:
                        self._garbage(old.paths(self.root))
                    self._db.execute(
                        "INSERT OR REPLACE INTO rollups VALUES (?,?,?,?,?,1)",
                        (rollup.month, rollup.name, rollup.days_json(), rollup.server_rows, rollup.client_rows),
                    )
                _fault("rollup-committed")
                self._publish_rollup(rollup)
                self._collect_garbage()
                done += 1

    def _rollups(self, where: str = "pending = 0", args: tuple[Any, ...] = ()) -> dict[str, Rollup]:
        return parse_rollups(self._db.execute(f"{SELECT_ROLLUPS} WHERE {where}", args))

    def _publish_rollup(self, rollup: Rollup) -> None:
        _rename_into_place(self.files, rollup.paths(self.root))
        self._db.execute("UPDATE rollups SET pending = 0 WHERE month = ?", (rollup.month,))

    def _drop_rollup(self, month: str) -> None:
        """Forget the roll-up of `month` (inside the caller's transaction): its days changed."""
        for rollup in self._rollups("month = ?", (month,)).values():
            self._garbage(rollup.paths(self.root))
            self._db.execute("DELETE FROM rollups WHERE month = ?", (month,))

    def _partials(self, where: str, args: tuple[Any, ...]) -> list[Partial]:
        rows = self._db.execute(
            "SELECT name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, server_rows, client_rows, records, "
            f"level, fine, coarse FROM partials WHERE {where} ORDER BY t_min, name",
            args,
        ).fetchall()
        return [
            Partial(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], level=r[10], fine=bool(r[11]),
                    coarse=int(r[12]))
            for r in rows
        ]  # fmt: skip

    def _retire(self, partials: list[Partial], layer: str, kinds: int = COARSE) -> None:
        """Take `partials` out of `layer` ("fine", or "coarse" for the `kinds`
        flags); those in no layer any more are deleted once the transaction commits."""
        keys = [(p.day, p.name) for p in partials]
        if layer == "fine":
            self._db.executemany("UPDATE partials SET fine = 0 WHERE day = ? AND name = ?", keys)
            gone = [p for p in partials if not p.coarse]
        else:
            self._db.executemany(f"UPDATE partials SET coarse = coarse & {~kinds} WHERE day = ? AND name = ?", keys)
            gone = [p for p in partials if not p.fine and not p.coarse & ~kinds]
        self._db.executemany("DELETE FROM partials WHERE day = ? AND name = ?", [(p.day, p.name) for p in gone])
        self._garbage([f for p in gone for f in p.paths(self.root)])

    def _garbage(self, paths: list[PurePath]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(self.files.rel(p),) for p in paths])

    @contextmanager
    def transaction(self, cleanup: list[PurePath]) -> Iterator[None]:
        """One ledger transaction; on failure it is rolled back and the
        temporary files of `cleanup` (final paths) are removed."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            _remove_temporaries(self.files, cleanup)
            if isinstance(err, sqlite3.OperationalError):
                raise StoreError(ledger_write_error(self.files.ledger, err)) from None
            raise

    # -- upgrading and rebuilding the aggregates ------------------------------

    def days_without_partials(self) -> list[str]:
        """Days whose records have no partials (a store written before them)."""
        rows = self._db.execute(
            "SELECT DISTINCT day FROM files WHERE day IS NOT NULL AND day NOT IN (SELECT day FROM partials) "
            "ORDER BY day"
        ).fetchall()
        return [r[0] for r in rows]

    def rebuild_aggregates(
        self,
        days: list[str] | None = None,
        stop: Callable[[], bool] | None = None,
        runner: DayRunner | None = None,
        merge_runner: MergeRunner | None = None,
    ) -> list[str]:
        """Recompute the partials of `days` (default: every day) from their
        records, one record file at a time, and swap each day's set in one
        transaction; then compact them. Return the days rebuilt (a `stop`
        asked between days ends it early; what was done stays done).

        `runner` runs build_day_partials over the days, in any order and on
        any machine that sees the store (the Dask engine's); by default, here,
        one day after the other. Each day is swapped in as its result comes;
        `merge_runner` then runs the compaction's merges (see compact_days).
        """
        if days is None:
            days = [r[0] for r in self._db.execute("SELECT DISTINCT day FROM files WHERE day IS NOT NULL")]
        work = [
            (day, self._db.execute(
                "SELECT path, source_id, chunk FROM files WHERE day = ? AND pending = 0 ORDER BY path", (day,)
            ).fetchall())
            for day in sorted(days)
        ]  # fmt: skip
        run = runner or (lambda jobs: (build_day_partials(self.files, day, files) for day, files in jobs))
        rebuilt: list[str] = []
        for day, new, sensors in run(work):
            if stop is not None and stop():
                _remove_temporaries(self.files, [f for p in new for f in p.paths(self.root)])
                break
            old = self._partials("day = ?", (day,))
            with self.transaction(cleanup=[f for p in new for f in p.paths(self.root)]):
                self._db.execute("DELETE FROM partials WHERE day = ?", (day,))
                self._garbage([f for p in old for f in p.paths(self.root) if p.name not in {q.name for q in new}])
                self._insert_partials(new)
                self._db.execute("DELETE FROM day_sensors WHERE day = ?", (day,))
                self._add_day_sensors(sensors)
                self._drop_rollup(month_of(day))
            self._publish_partials(new)
            self._collect_garbage()
            rebuilt.append(day)
        legacy = self.root / "daily"
        if self.files.exists(legacy) and not self.days_without_partials():
            self.files.remove_tree(legacy)  # the dailies of ledger version 1
        self.compact_days(rebuilt, stop, merge_runner)
        self.roll_up_months(stop)
        return rebuilt

    def _collect_garbage(self) -> None:
        """Delete the files a committed compaction replaced."""
        paths = [r[0] for r in self._db.execute("SELECT path FROM garbage").fetchall()]
        for rel in paths:
            self.files.remove(self.root / rel)
        if paths:
            self.files.sync_dirs((self.root / rel).parent for rel in paths)
            self._db.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in paths])

    # -- recovery -----------------------------------------------------------

    def _rename_unpublished(self, finals: list[PurePath]) -> int:
        """Move the committed `finals` still under their temporary names
        into place; return how many. Raises StoreError when one is under
        neither name (the store lost a committed file)."""
        moved = [final for final in finals if not self.files.exists(final)]
        for final in moved:
            if not self.files.exists(tmp_name(final)):
                raise StoreError(f"store {self.files} is damaged: committed file {self.files.rel(final)} is missing")
        for final in moved:
            self.files.move(tmp_name(final), final)
        self.files.sync_dirs(final.parent for final in moved)
        return len(moved)

    def recover(self) -> int:
        """Bring the files in line with the ledger after a crash.

        Committed files still under their temporary names are renamed into
        place; temporary files the ledger does not know are deleted. Returns
        how many files were changed. Raises StoreError if a committed file
        is gone.
        """
        files = [self.root / rel for (rel,) in self._db.execute("SELECT path FROM files WHERE pending = 1")]
        partials = self._partials("pending = 1", ())
        rollups = self._rollups("pending = 1").values()
        changed = self._rename_unpublished(files)
        changed += self._rename_unpublished([f for p in partials for f in p.paths(self.root)])
        changed += self._rename_unpublished([f for r in rollups for f in r.paths(self.root)])
        for table in ("files", "partials", "rollups"):
            self._db.execute(f"UPDATE {table} SET pending = 0 WHERE pending = 1")
        self._collect_garbage()
        for top in (CONN_DIR, QUARANTINE_DIR, NOTICES_DIR, AGGREGATES_DIR, ROLLUPS_DIR, "daily"):
            for path in self.files.temporaries(self.root / top):
                self.files.remove(path)
                changed += 1
        return changed


#: (day, its record files as (path, source id, chunk)) for each day to rebuild.
DayJobs = list[tuple[str, list[tuple[str, str, int]]]]
#: What build_day_partials returns: the day, its new partials (temporary files), its (day, sensor, rows, newest).
DayPartials = tuple[str, list[Partial], list[tuple[str, str, int, int]]]
#: Runs build_day_partials over DayJobs, yielding results as they come.
DayRunner = Callable[[DayJobs], Iterable[DayPartials]]
#: Runs merge_partials (coarse) over groups of partials, yielding (group, merged partial) as they come.
MergeRunner = Callable[[list[list[Partial]]], Iterable[tuple[list[Partial], Partial]]]


def threaded_merges(store: StoreFS, pool: ThreadPoolExecutor, at_once: int) -> MergeRunner:
    """Runs Store.compact_days' merges on `pool`, `at_once` of them at a
    time, each as two tasks (its servers and its clients files, so two
    threads stay busy to the last merge), yielding them in order. The
    merges of a round are independent: each reads its own partials and
    writes a new one under temporary names. Abandoned early (a stop), it
    starts no more; those under way finish and their files are removed."""

    def run(groups: list[list[Partial]]) -> Iterator[tuple[list[Partial], Partial]]:
        started: deque[tuple[list[Partial], str, dict[str, Future[int]]]] = deque()
        waiting = iter(groups)
        try:
            while True:
                for group in itertools.islice(waiting, at_once - len(started)):
                    name = merged_name(group, fine=False)
                    tasks = {kind: pool.submit(merge_kind, store, group, kind, name) for kind in KINDS}
                    started.append((group, name, tasks))
                if not started:
                    return
                group, name, tasks = started.popleft()
                yield group, merged_partial(group, name, {kind: task.result() for kind, task in tasks.items()},
                                            fine=False)  # fmt: skip
        finally:
            for group, name, tasks in started:
                for task in tasks.values():
                    task.cancel()
                wait(tasks.values())
                _remove_temporaries(store, [partial_path(store.root, kind, group[0].day, name) for kind in KINDS])

    return run


def build_day_partials(store: StoreFS, day: str, files: list[tuple[str, str, int]]) -> DayPartials:
    """The partials of one day recomputed from its record `files` (path,
    source id, chunk), one file at a time, written under temporary names
    (no ledger: a worker runs it). Raises StoreError for a record file that
    is missing or unreadable, or a store that cannot be written."""
    new: list[Partial] = []
    sensors: list[tuple[str, str, int, int]] = []
    try:
        for path, source_id, chunk in files:
            try:
                records = store.read_table(store.root / path, columns=[*RECORD_COLUMNS])
            except (FileNotFoundError, pa.ArrowInvalid) as err:
                _remove_temporaries(store, [f for p in new for f in p.paths(store.root)])
                what = "is missing" if isinstance(err, FileNotFoundError) else "cannot be read"
                raise StoreError(f"record file {path} of {store} {what}: run 'synack check' (and --repair)") from None
            name = f"{source_id}-r{chunk:06d}"
            new.append(write_partial(store, name, day, source_id, (chunk, chunk), records))
            sensors.extend(sensor_counts(day, records))
    except OSError as err:
        _remove_temporaries(store, [f for p in new for f in p.paths(store.root)])
        raise StoreError(f"cannot write to store {store}: {err.strerror or err}") from None
    return day, new, sensors


def write_chunk_files(
    store: StoreFS,
    source_id: str,
    path: Path,
    chunk_no: int,
    days: list[DayRecords],
    quarantined: list[Quarantined],
    notices: pa.Table | None = None,
) -> ChunkFiles:
    """Write a chunk's files into `store` under temporary names
    (step 1 of a commit): its records by day with their partial aggregates,
    its quarantined lines, and (a notice log's chunk) its sensor notices.

    Needs no open Store (the ledger is not touched), so a worker process of
    a distributed engine runs it; the names are fixed by (source, chunk), so
    a retried task writes the same files again. Safe on several threads at
    once for different chunks. Raises StoreError (leaving nothing behind)
    when the store is unwritable.
    """
    planned: list[tuple[PurePath, str | None, int]] = []
    partials: list[Partial] = []
    root = store.root
    sensors: list[tuple[str, str, int, int]] = []
    name = f"{source_id}-{chunk_no:06d}"
    try:
        for one in days:
            day, part = one.day, one.records
            final = root / CONN_DIR / f"date={day}" / f"{name}.parquet"
            _write_parquet(store, part, tmp_name(final))
            planned.append((final, day, len(part)))
            partials.append(
                write_partial(store, name, day, source_id, (chunk_no, chunk_no), part, (one.servers, one.clients))
            )
            sensors.extend(sensor_counts(day, part))
        if quarantined:
            final = root / QUARANTINE_DIR / f"{name}.jsonl"
            _write_quarantine(store, quarantined, path, tmp_name(final))
            planned.append((final, None, len(quarantined)))
        if notices is not None and len(notices):
            final = root / NOTICES_DIR / f"{name}.parquet"
            _write_parquet(store, notices, tmp_name(final))
            planned.append((final, None, len(notices)))
    except OSError as err:
        _remove_temporaries(store, [f for f, _, _ in planned] + [f for p in partials for f in p.paths(root)])
        raise StoreError(f"cannot write to store {store}: {err.strerror or err}") from None
    newest = max((pc.max(d.records.column("ts")).as_py() for d in days), default=None)
    count = sum(len(d.records) for d in days)
    kept = len(notices) if notices is not None else 0
    return ChunkFiles(planned, count, len(quarantined), newest, tuple(partials), tuple(sensors), kept)


def _rename_into_place(store: StoreFS, finals: list[PurePath]) -> None:
    """Move committed files from their temporary names into place and make the moves durable."""
    for i, final in enumerate(finals):
        store.move(tmp_name(final), final)
        if i == 0:
            _fault("first-rename")
    store.sync_dirs(f.parent for f in finals)


def _remove_temporaries(store: StoreFS, finals: list[PurePath]) -> None:
    """Remove the temporary files of uncommitted `finals`."""
    for final in finals:
        store.remove(tmp_name(final))


def _check_location(files: StoreFS, create: bool) -> None:
    """Raise StoreError unless `files` is a store (or, with `create`, may become one)."""
    if files.local:
        root = Path(files.root)
        if not root.exists():
            if not create:
                raise StoreError(f"no synack store at {root}")
            try:
                root.mkdir(parents=True)
            except OSError as err:
                raise StoreError(f"cannot create store {root}: {err.strerror}") from None
        if not root.is_dir():
            raise StoreError(f"store path {root} is not a directory")
        # A first run that failed (a full disk, say) may have left only the lock.
        if any(p.name != LOCK for p in root.iterdir()) and not files.ledger.exists():
            raise StoreError(f"{root} is not empty and holds no {LEDGER}: not a synack store")
        return
    assert files.fs is not None
    bucket = files.root.parts[0]
    try:
        found = files.fs.get_file_info(bucket).type != pafs.FileType.NotFound
        if found and not files.ledger.exists():
            if not create:
                raise StoreError(f"no synack store at {files} (no ledger at {files.ledger}; pass --ledger)")
            if files.files_under(files.root):
                raise StoreError(
                    f"{files} holds files but the ledger {files.ledger} does not exist: pass this store's ledger "
                    "(--ledger)"
                )
    except OSError as err:
        raise StoreError(f"cannot reach the store {files}: {err}") from None
    if not found:
        raise StoreError(f"cannot open the store {files}: its bucket {bucket!r} does not exist")


def _migrate(db: sqlite3.Connection, files: StoreFS) -> None:
    """Bring the ledger to LEDGER_VERSION; refuse one written by a newer synack."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > LEDGER_VERSION:
        raise StoreError(
            f"store {files} was written by a newer synack (ledger version {version}, this one reads up to "
            f"{LEDGER_VERSION}): upgrade synack"
        )
    if version == LEDGER_VERSION:
        return
    if version == 0 and not _has_table(db, "sources") and files.files_under(files.root / CONN_DIR):
        raise StoreError(damaged_ledger(files, "it is empty, but the store holds records"))
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(_SCHEMA):
            db.execute(statement)
        for step in range(max(version, 1), LEDGER_VERSION):
            for statement in _statements(_MIGRATIONS[step]):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {LEDGER_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def ledger_write_error(ledger: Path, err: sqlite3.OperationalError) -> str:
    """The one-line error for a ledger SQLite could not write: nothing was committed."""
    return (
        f"cannot write to the ledger {ledger} ({err}): is the disk full or read-only? Nothing of this "
        "run was committed past the last complete chunk; run again once there is room"
    )


def damaged_ledger(files: StoreFS, why: object) -> str:
    """The one-line error for a ledger that cannot be read or trusted."""
    return (
        f"the ledger {files.ledger} is damaged ({why}); synack will not write to or answer from this store. "
        f"Move it aside and ingest the logs again (their records are in {files.root / CONN_DIR})"
    )


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


#: Columns whose min/max statistics serve queries (pruning by time and port).
_STATISTICS = ["ts", "server_p", "resp_p", "orig_p"]


def _write_parquet(store: StoreFS, table: pa.Table, tmp: PurePath) -> None:
    # Parquet dictionary pages only where Arrow already has a dictionary:
    # trying them on unique columns (uid, ts) costs time and saves nothing.
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    # Integers and times delta-encoded: a fifth less writing time than plain
    # pages through zstd, and slightly smaller files.
    delta = {f.name: "DELTA_BINARY_PACKED" for f in table.schema if _delta_encoded(f.type)}
    store.write_parquet(
        table,
        tmp,
        compression=PARQUET_COMPRESSION,
        compression_level=PARQUET_COMPRESSION_LEVEL,
        row_group_size=1 << 20,
        use_dictionary=dictionary,
        column_encoding=delta,
        write_statistics=[c for c in _STATISTICS if c in table.column_names],
    )


def _delta_encoded(column: pa.DataType) -> bool:
    return pa.types.is_integer(column) or pa.types.is_timestamp(column)


def _write_quarantine(store: StoreFS, entries: list[Quarantined], source_path: Path, tmp: PurePath) -> None:
    lines = []
    for q in entries:
        record = {
            "file": str(source_path),
            "line": q.line,
            "reason": q.reason,
            "text": q.text.decode("utf-8", "backslashreplace"),
        }
        lines.append(json.dumps(record, ensure_ascii=True) + "\n")
    store.write_bytes(tmp, "".join(lines).encode("ascii"))
