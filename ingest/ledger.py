"""The ledger: the single truth of what is in a store, and the only code that speaks SQL.

The ledger is a SQLite file (`ledger.sqlite` in a local store, or the
`--ledger` file of a store on object storage). Its tables:

* `sources`, `chunks`: which log sources were read to which byte and line;
* `files`: every committed record, quarantine and notice file, with its
  rows, size and CRC (its *stamp*: readers verify every file they read);
* `days`, `day_sensors`: records per day (and the day's *generation*,
  bumped by each commit that adds to it) and per (day, sensor);
* `partials`, `rollups`: the aggregate files (ingest.partials,
  ingest.rollups), with the stamps of their two files;
* `retired`: files a compaction replaced, kept under hidden names until
  their grace period ends (Store.collect_retired);
* `files_seen`: files read to their end at a size and mtime;
* `meta`: the store's identity (`store_id`) and the ledger's `generation`,
  bumped by every write transaction (ingest.store_identity).

Schema changes are named forward migrations (MIGRATIONS): each is a
function with the version it produces, and any rule for reading rows
written before it lives in that function. A writer migrates the file; a
reader (`read_state`) of an older ledger migrates a copy in memory, so
no decoder anywhere else knows old versions.

`Ledger` is a writer's connection: named reads and writes, rows decoded
into dataclasses here and nowhere else. `read_state` reads everything a
reader needs in one transaction (a `LedgerState`; ingest.snapshot makes
it the `Snapshot` every answer is computed from).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from synack.ingest.errors import StoreError
from synack.ingest.partials import COARSE, Partial
from synack.ingest.rollups import Rollup
from synack.ingest.store_files import FileStamp, StoreFS

#: The ledger's schema version (PRAGMA user_version); see MIGRATIONS.
LEDGER_VERSION = 5
#: How many times this process opened a ledger (tests count the opens an answer takes).
OPENS = {"count": 0}


# -- rows --------------------------------------------------------------------


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
class FileRow:
    """One committed record, quarantine or notice file (`path` relative to the store's root)."""

    path: str
    source_id: str
    chunk: int
    day: str | None  # None: a quarantine or notice file
    rows: int
    stamp: FileStamp | None = None  # None: written before stamps
    pending: bool = False  # committed, maybe not yet moved into place


@dataclass(frozen=True)
class DaySensor:
    """Records and the newest record (µs) of one sensor on one day ("" for no sensor)."""

    day: str
    sensor: str
    rows: int
    newest: int


@dataclass(frozen=True)
class SourcesSummary:
    """How many sources were ingested, the lines they quarantined, and the last ingest (UTC ISO text)."""

    sources: int = 0
    quarantined_lines: int = 0
    last_ingest: str | None = None


@dataclass(frozen=True)
class ChunkRow:
    """A chunk to commit: what it covers of its source."""

    source_id: str
    kind: str
    path: str
    chunk: int
    byte_start: int
    byte_end: int
    line_start: int
    line_end: int
    rows: int
    quarantined: int
    header: bytes
    complete: bool


def _stamp(size: int | None, crc: int | None) -> FileStamp | None:
    return None if size is None or crc is None else FileStamp(size, crc)


def _sizes(stamp: FileStamp | None) -> tuple[int | None, int | None]:
    return (None, None) if stamp is None else (stamp.size, stamp.crc)


_PARTIAL_COLUMNS = (
    "name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, server_rows, client_rows, records, level, fine, "
    "coarse, server_size, server_crc, client_size, client_crc, pending"
)


def _partial(r: sqlite3.Row) -> Partial:
    return Partial(
        r["name"], r["day"], r["source_id"], r["chunk_lo"], r["chunk_hi"], r["t_min"], r["t_max"],
        r["server_rows"], r["client_rows"], r["records"], level=r["level"], fine=bool(r["fine"]),
        coarse=int(r["coarse"]), server_stamp=_stamp(r["server_size"], r["server_crc"]),
        client_stamp=_stamp(r["client_size"], r["client_crc"]),
    )  # fmt: skip


_ROLLUP_COLUMNS = "month, name, days, server_rows, client_rows, server_size, server_crc, client_size, client_crc"


def _rollup(r: sqlite3.Row) -> Rollup:
    return Rollup(r["month"], r["name"], json.loads(r["days"]), r["server_rows"], r["client_rows"],
                  _stamp(r["server_size"], r["server_crc"]), _stamp(r["client_size"], r["client_crc"]))  # fmt: skip


_FILE_COLUMNS = "path, source_id, chunk, day, rows, size, crc, pending"


def _file(r: sqlite3.Row) -> FileRow:
    return FileRow(r["path"], r["source_id"], r["chunk"], r["day"], r["rows"], _stamp(r["size"], r["crc"]),
                   bool(r["pending"]))  # fmt: skip


# -- migrations ---------------------------------------------------------------


def _v1_base(db: sqlite3.Connection) -> None:
    """Version 1: sources, chunks, record files, days (a ledger from before versions reads 0 and holds these)."""
    db.executescript_statements(  # type: ignore[attr-defined]
        """
CREATE TABLE IF NOT EXISTS sources (
    source_id TEXT PRIMARY KEY, kind TEXT NOT NULL, first_path TEXT NOT NULL, last_path TEXT NOT NULL,
    committed_bytes INTEGER NOT NULL, next_line INTEGER NOT NULL, chunks INTEGER NOT NULL, rows INTEGER NOT NULL,
    quarantined INTEGER NOT NULL, header BLOB NOT NULL, complete INTEGER NOT NULL, first_ingest TEXT NOT NULL,
    last_ingest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    source_id TEXT NOT NULL, chunk INTEGER NOT NULL, byte_start INTEGER NOT NULL, byte_end INTEGER NOT NULL,
    line_start INTEGER NOT NULL, line_end INTEGER NOT NULL, rows INTEGER NOT NULL, quarantined INTEGER NOT NULL,
    committed_at TEXT NOT NULL, PRIMARY KEY (source_id, chunk)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, source_id TEXT NOT NULL, chunk INTEGER NOT NULL, day TEXT, rows INTEGER NOT NULL,
    pending INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_pending ON files (pending) WHERE pending = 1;
CREATE TABLE IF NOT EXISTS garbage (path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS files_seen (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, source_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, generation INTEGER NOT NULL, rows INTEGER NOT NULL);
"""
    )


def _v2_partials(db: sqlite3.Connection) -> None:
    """Version 2: partial aggregates per chunk; rows and newest record per (day, sensor)."""
    db.executescript_statements(  # type: ignore[attr-defined]
        """
CREATE TABLE IF NOT EXISTS partials (
    name TEXT NOT NULL, day TEXT NOT NULL, source_id TEXT NOT NULL, chunk_lo INTEGER NOT NULL,
    chunk_hi INTEGER NOT NULL, t_min INTEGER NOT NULL, t_max INTEGER NOT NULL, server_rows INTEGER NOT NULL,
    client_rows INTEGER NOT NULL, records INTEGER NOT NULL, level INTEGER NOT NULL, fine INTEGER NOT NULL,
    coarse INTEGER NOT NULL, pending INTEGER NOT NULL, PRIMARY KEY (day, name)
);
CREATE INDEX IF NOT EXISTS partials_pending ON partials (pending) WHERE pending = 1;
CREATE TABLE IF NOT EXISTS day_sensors (
    day TEXT NOT NULL, sensor TEXT NOT NULL, rows INTEGER NOT NULL, newest INTEGER NOT NULL,
    PRIMARY KEY (day, sensor)
);
"""
    )


def _v3_rollups(db: sqlite3.Connection) -> None:
    """Version 3: monthly roll-ups of settled days (ingest.rollups)."""
    db.executescript_statements(  # type: ignore[attr-defined]
        """
CREATE TABLE IF NOT EXISTS rollups (
    month TEXT PRIMARY KEY, name TEXT NOT NULL, days TEXT NOT NULL, server_rows INTEGER NOT NULL,
    client_rows INTEGER NOT NULL, pending INTEGER NOT NULL
);
"""
    )


def _v4_coarse_kinds(db: sqlite3.Connection) -> None:
    """Version 4: a partial's coarse flag says which kinds whole-day reads take
    from it (ingest.partials.COARSE_*). Before, 1 meant both."""
    db.execute(f"UPDATE partials SET coarse = {COARSE} WHERE coarse = 1")


def _v5_stamps_identity(db: sqlite3.Connection) -> None:
    """Version 5: every file's size and CRC (files written before have none and
    are checked by their page checksums and rows); replaced files retired
    with a time, not deleted at once (the `garbage` of before is past its
    grace); the store's identity and the ledger's generation."""
    for table, columns in (
        ("files", ("size", "crc")),
        ("partials", ("server_size", "server_crc", "client_size", "client_crc")),
        ("rollups", ("server_size", "server_crc", "client_size", "client_crc")),
    ):
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column not in have:  # a ledger set back to an older version by hand may have them
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER")
    db.execute("CREATE TABLE IF NOT EXISTS retired (path TEXT PRIMARY KEY, retired_at REAL NOT NULL)")
    if _has_table(db, "garbage"):
        db.execute("INSERT OR IGNORE INTO retired SELECT path, 0 FROM garbage")
        db.execute("DROP TABLE garbage")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL)")
    db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (new_store_id(),))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', 0)")


#: (version produced, migration); applied in order from the ledger's version.
MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _v1_base),
    (2, _v2_partials),
    (3, _v3_rollups),
    (4, _v4_coarse_kinds),
    (5, _v5_stamps_identity),
]
assert MIGRATIONS[-1][0] == LEDGER_VERSION


def new_store_id() -> str:
    """A fresh store identity."""
    return uuid.uuid4().hex


class _Connection(sqlite3.Connection):
    """A connection whose rows are sqlite3.Row and which runs scripts statement by statement inside a transaction."""

    def executescript_statements(self, script: str) -> None:
        for part in script.split(";"):
            if part.strip():
                self.execute(part)


def _connect(target: str, *, uri: bool = False) -> _Connection:
    OPENS["count"] += 1
    db = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False, factory=_Connection)
    db.row_factory = sqlite3.Row
    return db


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _migrate(db: sqlite3.Connection) -> None:
    """Bring `db` to LEDGER_VERSION in one transaction (the caller checked it is not newer)."""
    version = _version(db)
    if version == LEDGER_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # A ledger from before versions reads 0 but holds version 1's tables.
        start = version or (1 if _has_table(db, "sources") else 0)
        for produced, step in MIGRATIONS:
            if produced > start:
                step(db)
        db.execute(f"PRAGMA user_version = {LEDGER_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _too_new(version: int, where: object) -> StoreError:
    return StoreError(
        f"store {where} was written by a newer synack (ledger version {version}, this one reads up to "
        f"{LEDGER_VERSION}): upgrade synack"
    )


def ledger_write_error(ledger: Path, err: sqlite3.Error) -> str:
    """The one-line error for a ledger SQLite could not write: nothing was committed."""
    return (
        f"cannot write to the ledger {ledger} ({err}): is the disk full or read-only? Nothing of this "
        "run was committed past the last complete chunk; run again once there is room"
    )


def damaged_ledger(files: StoreFS, why: object) -> str:
    """The one-line error for a ledger that cannot be read or trusted."""
    return (
        f"the ledger {files.ledger} is damaged ({why}); synack will not write to or answer from this store. "
        f"Move it aside and ingest the logs again (their records are in {files.root / 'conn'})"
    )


# -- the writer's ledger ------------------------------------------------------


class Ledger:
    """A writer's connection to a ledger (the store holds the lock). Reads
    and writes are named; writes run inside `transaction()`."""

    def __init__(self, db: _Connection, files: StoreFS) -> None:
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
            db = _connect(str(files.ledger))
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the ledger {files.ledger}: {err}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            version = _version(db)
            if version > LEDGER_VERSION:
                raise _too_new(version, files)
            if version == 0 and not _has_table(db, "sources") and records_exist:
                raise StoreError(damaged_ledger(files, "it is empty, but the store holds records"))
            _migrate(db)
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

    def set_store_id(self, store_id: str) -> None:
        with self.transaction():
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'store_id'", (store_id,))

    # -- sources ------------------------------------------------------------

    def source_state(self, source_id: str) -> SourceState | None:
        """The ledger's record of `source_id`, or None if never ingested."""
        r = self._db.execute(
            "SELECT source_id, committed_bytes, next_line, chunks, rows, quarantined, header, complete "
            "FROM sources WHERE source_id = ?",
            (source_id,),
        ).fetchone()
        if r is None:
            return None
        return SourceState(r["source_id"], r["committed_bytes"], r["next_line"], r["chunks"], r["rows"],
                           r["quarantined"], bytes(r["header"]), bool(r["complete"]))  # fmt: skip

    def add_chunk(self, chunk: ChunkRow, files: list[FileRow], partials: Iterable[Partial],
                  sensors: Iterable[DaySensor]) -> None:  # fmt: skip
        """Record one committed chunk (inside a transaction): its row, its
        files (pending), the days it adds to (their generations bumped), its
        partials (pending), its sensor counts and the source's new offset.
        Raises StoreError when the source's offset is not the chunk's start
        (another writer got there first)."""
        db = self._db
        current = db.execute("SELECT committed_bytes FROM sources WHERE source_id = ?", (chunk.source_id,)).fetchone()
        if (current[0] if current else 0) != chunk.byte_start:
            raise StoreError(f"ledger offset of source {chunk.source_id} moved; chunk not committed")
        now = _now()
        db.execute(
            "INSERT INTO chunks (source_id, chunk, byte_start, byte_end, line_start, line_end, rows, quarantined, "
            "committed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (chunk.source_id, chunk.chunk, chunk.byte_start, chunk.byte_end, chunk.line_start, chunk.line_end,
             chunk.rows, chunk.quarantined, now),
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
        if current is None:
            db.execute(
                "INSERT INTO sources (source_id, kind, first_path, last_path, committed_bytes, next_line, chunks, "
                "rows, quarantined, header, complete, first_ingest, last_ingest) VALUES (?,?,?,?,?,?,1,?,?,?,?,?,?)",
                (chunk.source_id, chunk.kind, chunk.path, chunk.path, chunk.byte_end, chunk.line_end, chunk.rows,
                 chunk.quarantined, chunk.header, int(chunk.complete), now, now),
            )  # fmt: skip
        else:
            db.execute(
                "UPDATE sources SET last_path = ?, committed_bytes = ?, next_line = ?, chunks = chunks + 1, "
                "rows = rows + ?, quarantined = quarantined + ?, header = ?, complete = ?, last_ingest = ? "
                "WHERE source_id = ?",
                (chunk.path, chunk.byte_end, chunk.line_end, chunk.rows, chunk.quarantined, chunk.header,
                 int(chunk.complete), now, chunk.source_id),
            )  # fmt: skip

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
            self._db.execute(
                "INSERT OR REPLACE INTO files_seen (path, size, mtime_ns, source_id) VALUES (?, ?, ?, ?)",
                (path, size, mtime_ns, source_id),
            )

    # -- files ----------------------------------------------------------------

    def file_rows(self, *, day: str | None = None, source_id: str | None = None, records_only: bool = False,
              pending: bool | None = None) -> list[FileRow]:  # fmt: skip
        """Committed files, by path, narrowed by day, source, records only (with a day) and pending state."""
        where: list[str] = ["1"]
        args: list[Any] = []
        if day is not None:
            where.append("day = ?")
            args.append(day)
        if source_id is not None:
            where.append("source_id = ?")
            args.append(source_id)
        if records_only:
            where.append("day IS NOT NULL")
        if pending is not None:
            where.append("pending = ?")
            args.append(int(pending))
        rows = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE {' AND '.join(where)} ORDER BY path", args)
        return [_file(r) for r in rows]

    def add_files(self, files: Iterable[FileRow]) -> None:
        """Record files as pending (inside a transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO files (path, source_id, chunk, day, rows, pending, size, crc) "
            "VALUES (?,?,?,?,?,1,?,?)",
            [(f.path, f.source_id, f.chunk, f.day, f.rows, *_sizes(f.stamp)) for f in files],
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
        """(day, rows the ledger counts, rows its files hold) of every day where the two differ."""
        rows = self._db.execute(
            "SELECT d.day, d.rows, COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = d.day), 0) AS summed "
            "FROM days d"
        )
        return [(r[0], r[1], r[2]) for r in rows if r[1] != r[2]]

    def recount_days(self, days: Iterable[str]) -> None:
        """Set each day's count to what its files hold (inside a transaction)."""
        self._db.executemany(
            "UPDATE days SET rows = COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = days.day), 0) WHERE day = ?",
            [(d,) for d in days],
        )

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
        where: list[str] = ["1"]
        args: list[Any] = []
        for column, value in (("day = ?", day), ("source_id = ?", source_id), ("day < ?", before)):
            if value is not None:
                where.append(column)
                args.append(value)
        if fine:
            where.append("fine = 1")
        if coarse:
            where.append("coarse != 0")
        if pending is not None:
            where.append("pending = ?")
            args.append(int(pending))
        rows = self._db.execute(
            f"SELECT {_PARTIAL_COLUMNS} FROM partials WHERE {' AND '.join(where)} ORDER BY t_min, name", args
        )
        return [_partial(r) for r in rows]

    def newest_partial_day(self) -> str | None:
        return self._db.execute("SELECT max(day) FROM partials").fetchone()[0]

    def insert_partials(self, partials: Iterable[Partial]) -> None:
        """Record partials as pending (inside a transaction)."""
        self._db.executemany(
            f"INSERT OR REPLACE INTO partials ({_PARTIAL_COLUMNS}) VALUES ({','.join('?' * 18)})",
            [(p.name, p.day, p.source_id, p.chunk_lo, p.chunk_hi, p.t_min, p.t_max, p.server_rows, p.client_rows,
              p.records, p.level, int(p.fine), int(p.coarse), *_sizes(p.server_stamp), *_sizes(p.client_stamp), 1)
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
        where: list[str] = ["1"]
        args: list[Any] = []
        if month is not None:
            where.append("month = ?")
            args.append(month)
        if pending is not None:
            where.append("pending = ?")
            args.append(int(pending))
        rows = self._db.execute(f"SELECT {_ROLLUP_COLUMNS} FROM rollups WHERE {' AND '.join(where)}", args)
        return {r["month"]: _rollup(r) for r in rows}

    def put_rollup(self, rollup: Rollup) -> None:
        """Record a month's new roll-up as pending (inside a transaction)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO rollups ({_ROLLUP_COLUMNS}, pending) VALUES (?,?,?,?,?,?,?,?,?,1)",
            (rollup.month, rollup.name, rollup.days_json(), rollup.server_rows, rollup.client_rows,
             *_sizes(rollup.server_stamp), *_sizes(rollup.client_stamp)),
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

    def quick_check(self) -> str:
        """SQLite's quick_check verdict ("ok" when the file is sound)."""
        return str(self._db.execute("PRAGMA quick_check").fetchone()[0])


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def now_seconds() -> float:
    """The time retirements are recorded in (epoch seconds)."""
    return time.time()


# -- the reader's state ---------------------------------------------------


@dataclass(frozen=True)
class LedgerState:
    """Everything a reader needs from a ledger, read in one transaction
    (ingest.snapshot.Snapshot wraps it with verified reads of its files)."""

    files: StoreFS
    version: int = LEDGER_VERSION
    store_id: str | None = None
    generation: int = 0
    days: dict[str, tuple[int, int]] = field(default_factory=dict)  # day -> (generation, rows)
    partials: tuple[Partial, ...] = ()
    rollups: dict[str, Rollup] = field(default_factory=dict)
    day_sensors: tuple[DaySensor, ...] = ()
    record_files: tuple[FileRow, ...] = ()  # conn/ files, by path
    notice_files: tuple[FileRow, ...] = ()
    sources: SourcesSummary = SourcesSummary()


def _reader_uri(path: Path) -> str:
    """A read-only SQLite URI for `path`, whatever characters it holds (`#`, `?`, `%`, spaces)."""
    return f"file:{quote(str(path.absolute()), safe='/')}?mode=ro"


def read_state(files: StoreFS, notices_dir: str) -> LedgerState:
    """The ledger of `files` read once, read-only, in one transaction.

    Raises StoreError for a ledger that cannot be read or is newer than
    this synack. An older ledger is migrated in memory (the file is not
    written). A ledger with no tables (a first run that wrote nothing)
    gives an empty state."""
    try:
        source = _connect(_reader_uri(files.ledger), uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger {files.ledger}: {err}") from None
    try:
        source.execute("BEGIN")
        version = _version(source)
        if version > LEDGER_VERSION:
            raise _too_new(version, files)
        db = source
        if version < LEDGER_VERSION:
            if not _has_table(source, "sources"):
                return LedgerState(files)
            db = _connect(":memory:")
            source.backup(db)
            _migrate(db)
            db.execute("BEGIN")
        try:
            state = _state(db, files, version, notices_dir)
            # An identity made up by the in-memory migration is no identity.
            return state if version == LEDGER_VERSION else replace(state, store_id=None)
        finally:
            if db is not source:
                db.close()
    except sqlite3.Error as err:
        raise StoreError(damaged_ledger(files, err)) from None
    finally:
        source.close()


def _state(db: sqlite3.Connection, files: StoreFS, version: int, notices_dir: str) -> LedgerState:
    meta = {r[0]: r[1] for r in db.execute("SELECT key, value FROM meta")}
    days = {r[0]: (r[1], r[2]) for r in db.execute("SELECT day, generation, rows FROM days")}
    partials = tuple(_partial(r) for r in db.execute(f"SELECT {_PARTIAL_COLUMNS} FROM partials ORDER BY t_min, name"))
    rollups = {r["month"]: _rollup(r) for r in db.execute(f"SELECT {_ROLLUP_COLUMNS} FROM rollups WHERE pending = 0")}
    sensors = tuple(
        DaySensor(*r) for r in db.execute("SELECT day, sensor, rows, newest FROM day_sensors ORDER BY day, sensor")
    )
    listed = [_file(r) for r in db.execute(f"SELECT {_FILE_COLUMNS} FROM files ORDER BY path")]
    count, quarantined, last = db.execute(
        "SELECT count(*), COALESCE(sum(quarantined), 0), max(last_ingest) FROM sources"
    ).fetchone()
    return LedgerState(
        files, version, meta.get("store_id"), int(meta.get("generation", 0)), days, partials, rollups, sensors,
        tuple(f for f in listed if f.day is not None),
        tuple(f for f in listed if f.path.startswith(notices_dir + "/")),
        SourcesSummary(count, quarantined, last),
    )  # fmt: skip


def listed_now(files: StoreFS, notices_dir: str) -> dict[str, FileStamp | None] | None:
    """Every file the ledger lists now (record, notice, partial and roll-up
    files, relative paths) with its stamp: a reader whose file is gone or
    changed asks it to tell a store that changed under it from a damaged
    one. None when the ledger cannot be read."""
    try:
        now = read_state(files, notices_dir)
    except StoreError:
        return None
    root = files.root
    listed = {f.path: f.stamp for f in (*now.record_files, *now.notice_files)}
    for p in now.partials:
        listed.update({files.rel(path): stamp for path, stamp in zip(p.paths(root), p.stamps())})
    for r in now.rollups.values():
        listed.update({files.rel(path): stamp for path, stamp in zip(r.paths(root), r.stamps())})
    return listed
