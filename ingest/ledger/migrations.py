"""The ledger's schema: named forward migrations, and opening a ledger file (ingest.ledger).

Each migration is a function with the version it produces; a rule for
reading rows written before it lives in that function, nowhere else.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from synack.ingest.errors import StoreError
from synack.ingest.file_modes import FILE, open_new
from synack.ingest.partials import COARSE
from synack.ingest.store_files import StoreFS

#: The ledger's schema version (PRAGMA user_version); see MIGRATIONS.
LEDGER_VERSION = 7
#: How many times this process opened a ledger (tests count the opens an answer takes).
OPENS = {"count": 0}


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
    if has_table(db, "garbage"):
        db.execute("INSERT OR IGNORE INTO retired SELECT path, 0 FROM garbage")
        db.execute("DROP TABLE garbage")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL)")
    db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (new_store_id(),))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', 0)")


def _v6_pruned_days(db: sqlite3.Connection) -> None:
    """Version 6: a day whose records were pruned (retention) keeps its
    aggregates and its count; `pruned` says its records are gone on purpose."""
    have = {r[1] for r in db.execute("PRAGMA table_info(days)")}
    if "pruned" not in have:
        db.execute("ALTER TABLE days ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0")


def _v7_blocks(db: sqlite3.Connection) -> None:
    """Version 7: header blocks read once wherever they appear (ingest.log_blocks):
    each block's committed bytes and end, and the block in force at each source's offset."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS blocks (block_id TEXT PRIMARY KEY, source_id TEXT NOT NULL, "
        "bytes INTEGER NOT NULL, ended INTEGER NOT NULL)"
    )
    have = {r[1] for r in db.execute("PRAGMA table_info(sources)")}
    if "tail_block" not in have:
        db.execute("ALTER TABLE sources ADD COLUMN tail_block TEXT NOT NULL DEFAULT ''")
        db.execute("ALTER TABLE sources ADD COLUMN tail_start INTEGER NOT NULL DEFAULT 0")


#: (version produced, migration); applied in order from the ledger's version.
MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _v1_base),
    (2, _v2_partials),
    (3, _v3_rollups),
    (4, _v4_coarse_kinds),
    (5, _v5_stamps_identity),
    (6, _v6_pruned_days),
    (7, _v7_blocks),
]
assert MIGRATIONS[-1][0] == LEDGER_VERSION


def new_store_id() -> str:
    """A fresh store identity."""
    return uuid.uuid4().hex


class LedgerConnection(sqlite3.Connection):
    """A connection whose rows are sqlite3.Row and which runs scripts statement by statement inside a transaction."""

    def executescript_statements(self, script: str) -> None:
        for part in script.split(";"):
            if part.strip():
                self.execute(part)


def connect(target: str, *, uri: bool = False) -> LedgerConnection:
    OPENS["count"] += 1
    db = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False, factory=LedgerConnection)
    db.row_factory = sqlite3.Row
    return db


def copy_ledger(source: Path, target: Path) -> None:
    """Copy the ledger file `source` (with what its write-ahead log holds)
    to `target`, a consistent copy made by SQLite's backup. Raises
    sqlite3.Error when `source` is no SQLite database, OSError."""
    if not target.exists():  # SQLite would create it with the process's umask, not a ledger's mode
        os.close(open_new(target, FILE))
    reader = sqlite3.connect(f"file:{quote(str(source.absolute()), safe='/')}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()


def version_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def migrate(db: sqlite3.Connection) -> None:
    """Bring `db` to LEDGER_VERSION in one transaction (the caller checked it is not newer)."""
    version = version_of(db)
    if version == LEDGER_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # A ledger from before versions reads 0 but holds version 1's tables.
        start = version or (1 if has_table(db, "sources") else 0)
        for produced, step in MIGRATIONS:
            if produced > start:
                step(db)
        db.execute(f"PRAGMA user_version = {LEDGER_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def too_new(version: int, where: object) -> StoreError:
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
        "Run 'synack check --adopt' to rebuild it from the store's files (the damaged one is kept beside it)"
    )
