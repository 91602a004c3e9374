"""A writer's connection to the ledger: named reads and writes (ingest.ledger)."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from synack.ingest.errors import StoreError
from synack.ingest.file_modes import FILE, make_dirs, open_new
from synack.ingest.ledger.migrations import (
    LEDGER_VERSION,
    LedgerConnection,
    connect,
    damaged_ledger,
    has_table,
    ledger_write_error,
    migrate,
    too_new,
    version_of,
)
from synack.ingest.ledger.rows import (
    FILE_COLUMNS,
    PARTIAL_COLUMNS,
    ROLLUP_COLUMNS,
    SOURCE_COLUMNS,
    BlockMark,
    ChunkRow,
    ChunkSpan,
    DaySensor,
    FileRow,
    SourceRow,
    SourceState,
    decode_file,
    decode_partial,
    decode_rollup,
    decode_source,
    stamp_columns,
)
from synack.ingest.partials import COARSE, Partial
from synack.ingest.rollups import Rollup
from synack.ingest.store_files import StoreFS


class Ledger:
    """A writer's connection to a ledger (the store holds the lock). Reads
    and writes are named; writes run inside `transaction()`."""

    def __init__(self, db: LedgerConnection, files: StoreFS) -> None:
        self._db = db
        self.files = files
        #: Called after each transaction that bumped the generation (the store writes its marker).
        self.on_commit: Callable[[], None] | None = None

    @classmethod
    def open(cls, files: StoreFS, *, records_exist: bool) -> Ledger:
        """Open (creating or migrating) the ledger of `files` for writing.
        `records_exist`: the store already holds record files (an empty
        ledger then is a lost one). Raises StoreError."""
        try:
            if not files.ledger.exists():  # SQLite gives its -wal and -shm files the ledger's mode
                make_dirs(files.ledger.parent)
                os.close(open_new(files.ledger, FILE))
            db = connect(str(files.ledger))
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the ledger {files.ledger}: {err}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            version = version_of(db)
            if version > LEDGER_VERSION:
                raise too_new(version, files)
            if version == 0 and not has_table(db, "sources") and records_exist:
                raise StoreError(damaged_ledger(files, "it is empty, but the store holds records"))
            migrate(db)
        except sqlite3.OperationalError as err:
            db.close()
            raise StoreError(ledger_write_error(files.ledger, err)) from None
        except sqlite3.DatabaseError as err:
            db.close()
            raise StoreError(damaged_ledger(files, err)) from None
        except BaseException:
            db.close()
            raise
        return cls(db, files)

    def close(self) -> None:
        """Leave WAL mode (a read-only reader then needs no -wal/-shm files) and close."""
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error:
            pass  # another connection still reads it; WAL stays, which is as safe
        self._db.close()

    @contextmanager
    def transaction(self, *, bump: bool = True) -> Iterator[None]:
        """One write transaction; with `bump` (a change of what the store
        holds) it bumps the ledger's generation and calls `on_commit` once
        committed. Rolled back on any failure; a SQLite failure becomes StoreError."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(ledger_write_error(self.files.ledger, err)) from None
        try:
            yield
            if bump:
                db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            db.execute("COMMIT")
        except BaseException as err:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk)
                db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise StoreError(ledger_write_error(self.files.ledger, err)) from None
            raise
        if bump and self.on_commit is not None:
            self.on_commit()

    # -- identity ---------------------------------------------------------

    def meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @property
    def store_id(self) -> str:
        return str(self.meta("store_id"))

    @property
    def generation(self) -> int:
        return int(self.meta("generation"))

    # -- sources ------------------------------------------------------------

    def source_state(self, source_id: str) -> SourceState | None:
        """The ledger's record of `source_id`, or None if never ingested."""
        r = self._db.execute(
            "SELECT source_id, committed_bytes, next_line, chunks, rows, quarantined, header, complete, tail_block, "
            "tail_start FROM sources WHERE source_id = ?",
            (source_id,),
        ).fetchone()
        if r is None:
            return None
        return SourceState(r["source_id"], r["committed_bytes"], r["next_line"], r["chunks"], r["rows"],
                           r["quarantined"], bytes(r["header"]), bool(r["complete"]), r["tail_block"],
                           r["tail_start"])  # fmt: skip

    def known_blocks(self) -> dict[str, tuple[int, bool]]:
        """Every header block read (ingest.log_blocks): id -> (bytes committed, ended)."""
        return {r[0]: (r[1], bool(r[2])) for r in self._db.execute("SELECT block_id, bytes, ended FROM blocks")}

    def add_chunk(self, chunk: ChunkRow, files: list[FileRow], partials: Iterable[Partial],
                  sensors: Iterable[DaySensor]) -> None:  # fmt: skip
        """Record one committed chunk (inside a transaction): its row, its
        files (pending), the days it adds to (their generations bumped), its
        partials (pending), its sensor counts and the source's new offset.
        Raises StoreError when the source's offset is not the chunk's start
        (another writer got there first)."""
        db, span = self._db, chunk.span
        current = db.execute("SELECT committed_bytes FROM sources WHERE source_id = ?", (chunk.source_id,)).fetchone()
        if (current[0] if current else 0) != span.byte_start:
            raise StoreError(f"ledger offset of source {chunk.source_id} moved; chunk not committed")
        now = _now()
        db.execute(
            "INSERT INTO chunks (source_id, chunk, byte_start, byte_end, line_start, line_end, rows, quarantined, "
            "committed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (chunk.source_id, span.chunk, span.byte_start, span.byte_end, span.line_start, span.line_end,
             span.rows, span.quarantined, now),
        )  # fmt: skip
        # Each commit that adds records to a day bumps the day's generation:
        # roll-ups compare it to the one they were built from.
        db.executemany(
            "INSERT INTO days (day, generation, rows) VALUES (?, 1, ?) ON CONFLICT(day) DO UPDATE "
            "SET generation = generation + 1, rows = rows + excluded.rows",
            [(f.day, f.rows) for f in files if f.day is not None],
        )
        self.add_files(files)
        self.insert_partials(partials)
        self.add_day_sensors(sensors)
        self.put_blocks(chunk.source_id, chunk.blocks)
        if current is None:
            db.execute(
                "INSERT INTO sources (source_id, kind, first_path, last_path, committed_bytes, next_line, chunks, "
                "rows, quarantined, header, complete, first_ingest, last_ingest, tail_block, tail_start) "
                "VALUES (?,?,?,?,?,?,1,?,?,?,?,?,?,?,?)",
                (chunk.source_id, chunk.kind, chunk.path, chunk.path, span.byte_end, span.line_end, span.rows,
                 span.quarantined, chunk.header, int(chunk.complete), now, now, *chunk.tail),
            )  # fmt: skip
        else:
            db.execute(
                "UPDATE sources SET last_path = ?, committed_bytes = ?, next_line = ?, chunks = chunks + 1, "
                "rows = rows + ?, quarantined = quarantined + ?, header = ?, complete = ?, last_ingest = ?, "
                "tail_block = ?, tail_start = ? WHERE source_id = ?",
                (chunk.path, span.byte_end, span.line_end, span.rows, span.quarantined, chunk.header,
                 int(chunk.complete), now, *chunk.tail, chunk.source_id),
            )  # fmt: skip

    def source_kind(self, source_id: str) -> str | None:
        """The kind of log `source_id` is (ingest.log_source's kinds), or None if never ingested."""
        r = self._db.execute("SELECT kind FROM sources WHERE source_id = ?", (source_id,)).fetchone()
        return None if r is None else str(r[0])

    def unquarantine(self, source_id: str, lines: int) -> None:
        """Take `lines` replayed lines off `source_id`'s quarantined count (inside a transaction)."""
        self._db.execute("UPDATE sources SET quarantined = max(quarantined - ?, 0) WHERE source_id = ?",
                         (lines, source_id))  # fmt: skip

    def mark_complete(self, source_id: str) -> None:
        """Record that `source_id` was read to its end (nothing more will come)."""
        with self.transaction():
            self._db.execute("UPDATE sources SET complete = 1 WHERE source_id = ?", (source_id,))

    def file_unchanged(self, path: str, size: int, mtime_ns: int) -> bool:
        """True when the log file `path` was read to its end at exactly this size and mtime."""
        row = self._db.execute(
            "SELECT 1 FROM files_seen WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
        ).fetchone()
        return row is not None

    def remember_file(self, path: str, size: int, mtime_ns: int, source_id: str) -> None:
        """Record that the log file `path` (this size and mtime) holds nothing more to read."""
        with self.transaction(bump=False):
            self.add_seen([(path, size, mtime_ns, source_id)])

    def add_seen(self, files: Iterable[tuple[str, int, int, str]]) -> None:
        """Record log files (path, size, mtime, source) read to their end (inside a transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO files_seen (path, size, mtime_ns, source_id) VALUES (?, ?, ?, ?)", list(files)
        )

    # -- files ----------------------------------------------------------------

    def file_rows(self, *, day: str | None = None, source_id: str | None = None, records_only: bool = False,
              pending: bool | None = None) -> list[FileRow]:  # fmt: skip
        """Committed files, by path, narrowed by day, source, records only (with a day) and pending state."""
        where, args = _where(("day = ?", day), ("source_id = ?", source_id), ("day IS NOT NULL", records_only),
                             ("pending = ?", None if pending is None else int(pending)))  # fmt: skip
        rows = self._db.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE {where} ORDER BY path", args)
        return [decode_file(r) for r in rows]

    def add_files(self, files: Iterable[FileRow]) -> None:
        """Record files as pending (inside a transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO files (path, source_id, chunk, day, rows, pending, size, crc) "
            "VALUES (?,?,?,?,?,1,?,?)",
            [(f.path, f.source_id, f.chunk, f.day, f.rows, *stamp_columns(f.stamp)) for f in files],
        )

    def remove_files(self, paths: Iterable[str]) -> None:
        """Forget files (inside a transaction)."""
        self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    def published_files(self, paths: Iterable[str]) -> None:
        """Clear the pending flag of files moved into place."""
        self._db.executemany("UPDATE files SET pending = 0 WHERE path = ?", [(p,) for p in paths])

    def record_days(self) -> list[str]:
        """Every day with record files."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT day FROM files WHERE day IS NOT NULL ORDER BY day")]

    def days_without_partials(self) -> list[str]:
        """Days whose records have no partials (a store written before them)."""
        rows = self._db.execute(
            "SELECT DISTINCT day FROM files WHERE day IS NOT NULL AND day NOT IN (SELECT day FROM partials) "
            "ORDER BY day"
        )
        return [r[0] for r in rows]

    def lose_day_rows(self, day: str, rows: int) -> None:
        """Take `rows` records off a day's count (inside a transaction): their file was lost."""
        self._db.execute("UPDATE days SET rows = rows - ? WHERE day = ?", (rows, day))

    def miscounted_days(self) -> list[tuple[str, int, int]]:
        """(day, rows the ledger counts, rows its files hold) of every day
        where the two differ (a pruned day holds no files on purpose)."""
        rows = self._db.execute(
            "SELECT d.day, d.rows, COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = d.day), 0) AS summed "
            "FROM days d WHERE d.pruned = 0"
        )
        return [(r[0], r[1], r[2]) for r in rows if r[1] != r[2]]

    def recount_days(self, days: Iterable[str]) -> None:
        """Set each day's count to what its files hold (inside a transaction)."""
        self._db.executemany(
            "UPDATE days SET rows = COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = days.day), 0) WHERE day = ?",
            [(d,) for d in days],
        )

    def crowded_days(self, before: str, min_files: int, max_rows: int) -> list[str]:
        """Days before `before` with at least `min_files` record files (in
        place) holding at most `max_rows` records in all."""
        rows = self._db.execute(
            "SELECT day FROM files WHERE day IS NOT NULL AND day < ? AND pending = 0 GROUP BY day "
            "HAVING count(*) >= ? AND sum(rows) <= ? ORDER BY day",
            (before, min_files, max_rows),
        )
        return [r[0] for r in rows]

    def pruned_days(self) -> list[str]:
        """The days whose records were pruned (their aggregates kept)."""
        return [r[0] for r in self._db.execute("SELECT day FROM days WHERE pruned = 1 ORDER BY day")]

    def mark_pruned(self, day: str) -> None:
        """Record that `day`'s records were pruned on purpose (inside a transaction)."""
        self._db.execute("UPDATE days SET pruned = 1 WHERE day = ?", (day,))

    def generations(self, before: str | None = None) -> dict[str, int]:
        """Each day's generation (of the days before `before`, when given)."""
        rows = self._db.execute("SELECT day, generation FROM days WHERE day < ?", (before or "9999",))
        return {r[0]: r[1] for r in rows}

    # -- partials -------------------------------------------------------------

    def partials(self, *, day: str | None = None, source_id: str | None = None, fine: bool = False,
                 coarse: bool = False, before: str | None = None,
                 pending: bool | None = False) -> list[Partial]:  # fmt: skip
        """Partials oldest first (by t_min, name), narrowed by day, source,
        layer (`fine`, `coarse`), days before `before` and pending state."""
        where, args = _where(("day = ?", day), ("source_id = ?", source_id), ("day < ?", before),
                             ("fine = 1", fine), ("coarse != 0", coarse),
                             ("pending = ?", None if pending is None else int(pending)))  # fmt: skip
        rows = self._db.execute(f"SELECT {PARTIAL_COLUMNS} FROM partials WHERE {where} ORDER BY t_min, name", args)
        return [decode_partial(r) for r in rows]

    def newest_partial_day(self) -> str | None:
        return self._db.execute("SELECT max(day) FROM partials").fetchone()[0]

    def insert_partials(self, partials: Iterable[Partial]) -> None:
        """Record partials as pending (inside a transaction)."""
        self._db.executemany(
            f"INSERT OR REPLACE INTO partials ({PARTIAL_COLUMNS}) VALUES ({','.join('?' * 18)})",
            [(p.name, p.day, p.source_id, p.chunk_lo, p.chunk_hi, p.t_min, p.t_max, p.server_rows, p.client_rows,
              p.records, p.level, int(p.fine), int(p.coarse), *stamp_columns(p.server_stamp),
              *stamp_columns(p.client_stamp), 1)
             for p in partials],
        )  # fmt: skip

    def published_partials(self, partials: Iterable[Partial]) -> None:
        """Clear the pending flag of partials moved into place."""
        self._db.executemany(
            "UPDATE partials SET pending = 0 WHERE day = ? AND name = ?", [(p.day, p.name) for p in partials]
        )

    def leave_layer(self, partials: list[Partial], layer: str, kinds: int = COARSE) -> list[Partial]:
        """Take `partials` out of `layer` ("fine", or "coarse" for the `kinds`
        flags) inside a transaction; return those now in no layer (deleted
        from the ledger: the caller retires their files)."""
        keys = [(p.day, p.name) for p in partials]
        if layer == "fine":
            self._db.executemany("UPDATE partials SET fine = 0 WHERE day = ? AND name = ?", keys)
            gone = [p for p in partials if not p.coarse]
        else:
            self._db.executemany(f"UPDATE partials SET coarse = coarse & {~kinds} WHERE day = ? AND name = ?", keys)
            gone = [p for p in partials if not p.fine and not p.coarse & ~kinds]
        self.delete_partials(gone)
        return gone

    def delete_partials(self, partials: Iterable[Partial]) -> None:
        self._db.executemany("DELETE FROM partials WHERE day = ? AND name = ?", [(p.day, p.name) for p in partials])

    def delete_day_partials(self, day: str) -> None:
        self._db.execute("DELETE FROM partials WHERE day = ?", (day,))

    # -- sensors ----------------------------------------------------------------

    def add_day_sensors(self, sensors: Iterable[DaySensor]) -> None:
        """Add (day, sensor) counts (inside a transaction)."""
        self._db.executemany(
            "INSERT INTO day_sensors (day, sensor, rows, newest) VALUES (?,?,?,?) ON CONFLICT(day, sensor) "
            "DO UPDATE SET rows = rows + excluded.rows, newest = max(newest, excluded.newest)",
            [(s.day, s.sensor, s.rows, s.newest) for s in sensors],
        )

    def replace_day_sensors(self, day: str, sensors: Iterable[DaySensor]) -> None:
        self._db.execute("DELETE FROM day_sensors WHERE day = ?", (day,))
        self.add_day_sensors(sensors)

    # -- roll-ups -------------------------------------------------------------

    def rollups(self, *, month: str | None = None, pending: bool | None = False) -> dict[str, Rollup]:
        """Roll-ups by month, narrowed by month and pending state."""
        where, args = _where(("month = ?", month), ("pending = ?", None if pending is None else int(pending)))
        rows = self._db.execute(f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE {where}", args)
        return {r["month"]: decode_rollup(r) for r in rows}

    def put_rollup(self, rollup: Rollup) -> None:
        """Record a month's new roll-up as pending (inside a transaction)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO rollups ({ROLLUP_COLUMNS}, pending) VALUES (?,?,?,?,?,?,?,?,?,1)",
            (rollup.month, rollup.name, rollup.days_json(), rollup.server_rows, rollup.client_rows,
             *stamp_columns(rollup.server_stamp), *stamp_columns(rollup.client_stamp)),
        )  # fmt: skip

    def published_rollup(self, rollup: Rollup) -> None:
        self._db.execute("UPDATE rollups SET pending = 0 WHERE month = ?", (rollup.month,))

    def delete_rollup(self, month: str) -> None:
        self._db.execute("DELETE FROM rollups WHERE month = ?", (month,))

    # -- retired files ----------------------------------------------------------

    def retire(self, paths: Iterable[str], at: float) -> None:
        """Record replaced files as retired at `at` (epoch seconds; inside a transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO retired (path, retired_at) VALUES (?, ?)", [(p, at) for p in paths]
        )

    def retired(self, *, before: float | None = None) -> list[str]:
        """Retired files (those retired before `before`, when given)."""
        rows = self._db.execute("SELECT path FROM retired WHERE retired_at < ? ORDER BY path", (before or 1e300,))
        return [r[0] for r in rows]

    def forget_retired(self, paths: Iterable[str]) -> None:
        """Forget retired files once deleted (its own transaction)."""
        with self.transaction(bump=False):
            self._db.executemany("DELETE FROM retired WHERE path = ?", [(p,) for p in paths])

    def publish_all(self) -> None:
        """Clear every pending flag (recovery, once every committed file is in place)."""
        with self.transaction(bump=False):
            for table in ("files", "partials", "rollups"):
                self._db.execute(f"UPDATE {table} SET pending = 0 WHERE pending = 1")

    # -- adoption (ingest.store_adopt) ---------------------------------------------

    def source_rows(self) -> dict[str, SourceRow]:
        """Every source's whole row, by source id."""
        return {r["source_id"]: decode_source(r) for r in self._db.execute(f"SELECT {SOURCE_COLUMNS} FROM sources")}

    def chunk_spans(self, source_id: str) -> list[ChunkSpan]:
        """The committed chunks of `source_id`, in order."""
        rows = self._db.execute(
            "SELECT chunk, byte_start, byte_end, line_start, line_end, rows, quarantined FROM chunks "
            "WHERE source_id = ? ORDER BY chunk",
            (source_id,),
        )
        return [ChunkSpan(*r) for r in rows]

    def put_source(self, row: SourceRow, spans: Iterable[ChunkSpan]) -> None:
        """Write a source's whole row and its chunks' rows, replacing those it had (inside a transaction)."""
        db = self._db
        db.execute(
            f"INSERT OR REPLACE INTO sources ({SOURCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (row.source_id, row.kind, row.first_path, row.last_path, row.committed_bytes, row.next_line, row.chunks,
             row.rows, row.quarantined, row.header, int(row.complete), row.first_ingest, row.last_ingest,
             row.tail_block, row.tail_start),
        )  # fmt: skip
        now = _now()
        db.executemany(
            "INSERT OR REPLACE INTO chunks (source_id, chunk, byte_start, byte_end, line_start, line_end, rows, "
            "quarantined, committed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(row.source_id, c.chunk, c.byte_start, c.byte_end, c.line_start, c.line_end, c.rows, c.quarantined, now)
             for c in spans],
        )  # fmt: skip

    def put_blocks(self, source_id: str, marks: Iterable[BlockMark]) -> None:
        """Record how far header blocks were read, keeping the furthest (inside a transaction)."""
        self._db.executemany(
            "INSERT INTO blocks (block_id, source_id, bytes, ended) VALUES (?,?,?,?) ON CONFLICT(block_id) DO UPDATE "
            "SET bytes = max(bytes, excluded.bytes), ended = max(ended, excluded.ended)",
            [(m.block_id, source_id, m.bytes, int(m.ended)) for m in marks],
        )

    def replace_files(self, rows: Iterable[FileRow]) -> None:
        """List exactly `rows` as the committed files, in place (inside a transaction)."""
        self._db.execute("DELETE FROM files")
        self._db.executemany(
            "INSERT INTO files (path, source_id, chunk, day, rows, pending, size, crc) VALUES (?,?,?,?,?,0,?,?)",
            [(f.path, f.source_id, f.chunk, f.day, f.rows, *stamp_columns(f.stamp)) for f in rows],
        )

    def adopt_days(self, rows: dict[str, int]) -> list[tuple[str, int]]:
        """Make `rows` (records by day) the days of the store, each a new
        generation, keeping the pruned days (inside a transaction); return
        the (day, records) the ledger counted on other days, now dropped."""
        db = self._db
        dropped = [(r[0], r[1]) for r in db.execute("SELECT day, rows FROM days WHERE pruned = 0 ORDER BY day")
                   if r[0] not in rows]  # fmt: skip
        db.executemany("DELETE FROM days WHERE day = ?", [(day,) for day, _ in dropped])
        db.executemany("DELETE FROM day_sensors WHERE day = ?", [(day,) for day, _ in dropped])
        db.executemany(
            "INSERT INTO days (day, generation, rows) VALUES (?, 1, ?) ON CONFLICT(day) DO UPDATE "
            "SET generation = generation + 1, rows = excluded.rows, pruned = 0",
            sorted(rows.items()),
        )
        return dropped

    def keep_partials_of(self, days: Iterable[str]) -> None:
        """Forget every partial but those of `days`, and every roll-up (inside a transaction)."""
        kept = sorted(set(days))
        self._db.execute(f"DELETE FROM partials WHERE day NOT IN ({','.join('?' * len(kept))})", kept)
        self._db.execute("DELETE FROM rollups")

    def replace_retired(self, paths: dict[str, float]) -> None:
        """List exactly `paths` (by the time each was retired) as retired (inside a transaction)."""
        self._db.execute("DELETE FROM retired")
        self.retire_at(paths)

    def retire_at(self, paths: dict[str, float]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO retired (path, retired_at) VALUES (?, ?)", sorted(paths.items()))

    def retired_times(self) -> dict[str, float]:
        """Every retired file and when it was retired."""
        return {r[0]: r[1] for r in self._db.execute("SELECT path, retired_at FROM retired")}

    def set_identity(self, store_id: str, generation: int) -> None:
        """Give the ledger a store's identity and a generation (inside a transaction, which bumps it once more)."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('store_id', ?)", (store_id,))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (generation,))

    def quick_check(self) -> str:
        """SQLite's quick_check verdict ("ok" when the file is sound)."""
        return str(self._db.execute("PRAGMA quick_check").fetchone()[0])


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause joining the conditions whose value is neither None nor
    False, and its arguments: a value for each condition with a `?` (a
    bool as 0/1); a condition without `?` is a flag (True includes it)."""
    clauses, args = ["1"], []
    for clause, value in conditions:
        if value is None or value is False:
            continue
        clauses.append(clause)
        if "?" in clause:
            args.append(int(value) if isinstance(value, bool) else value)
    return " AND ".join(clauses), args


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def now_seconds() -> float:
    """The time retirements are recorded in (epoch seconds)."""
    return time.time()
