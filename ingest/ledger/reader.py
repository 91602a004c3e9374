"""What a reader needs from the ledger, read in one transaction (ingest.ledger)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from synack.ingest.errors import StoreError
from synack.ingest.ledger.migrations import (
    LEDGER_VERSION,
    connect,
    damaged_ledger,
    has_table,
    migrate,
    too_new,
    version_of,
)
from synack.ingest.ledger.rows import (
    FILE_COLUMNS,
    PARTIAL_COLUMNS,
    ROLLUP_COLUMNS,
    DaySensor,
    FileRow,
    SourcesSummary,
    decode_file,
    decode_partial,
    decode_rollup,
)
from synack.ingest.partials import Partial
from synack.ingest.rollups import Rollup
from synack.ingest.store_files import FileStamp, StoreFS


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
    side_files: tuple[FileRow, ...] = ()  # files of no day (notices, identity facts, quarantine), by path
    sources: SourcesSummary = SourcesSummary()
    pruned_days: frozenset[str] = frozenset()  # days whose records were pruned (their aggregates kept)

    def under(self, folder: str) -> tuple[FileRow, ...]:
        """The files of no day under the store's top-level `folder` (notices, identity, quarantine)."""
        return tuple(f for f in self.side_files if f.path.startswith(folder + "/"))


def reader_uri(path: Path) -> str:
    """A read-only SQLite URI for `path`, whatever characters it holds (`#`, `?`, `%`, spaces)."""
    return f"file:{quote(str(path.absolute()), safe='/')}?mode=ro"


def read_state(files: StoreFS) -> LedgerState:
    """The ledger of `files` read once, read-only, in one transaction.

    Raises StoreError for a ledger that cannot be read or is newer than
    this synack. An older ledger is migrated in memory (the file is not
    written). A ledger with no tables (a first run that wrote nothing)
    gives an empty state."""
    try:
        source = connect(reader_uri(files.ledger), uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger {files.ledger}: {err}") from None
    try:
        source.execute("BEGIN")
        version = version_of(source)
        if version > LEDGER_VERSION:
            raise too_new(version, files)
        db = source
        # A ledger keeps its identity from version 5 on (the meta table).
        has_identity = has_table(source, "meta")
        if version < LEDGER_VERSION:
            if not has_table(source, "sources"):
                return LedgerState(files)
            db = connect(":memory:")
            source.backup(db)
            migrate(db)
            db.execute("BEGIN")
        try:
            state = _state(db, files, version)
            # An identity made up by the in-memory migration is no identity.
            return state if has_identity else replace(state, store_id=None)
        finally:
            if db is not source:
                db.close()
    except sqlite3.Error as err:
        raise StoreError(damaged_ledger(files, err)) from None
    finally:
        source.close()


def _state(db: sqlite3.Connection, files: StoreFS, version: int) -> LedgerState:
    meta = {r[0]: r[1] for r in db.execute("SELECT key, value FROM meta")}
    days = {r[0]: (r[1], r[2]) for r in db.execute("SELECT day, generation, rows FROM days")}
    partials = tuple(
        decode_partial(r) for r in db.execute(f"SELECT {PARTIAL_COLUMNS} FROM partials ORDER BY t_min, name")
    )
    rollups = {
        r["month"]: decode_rollup(r) for r in db.execute(f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE pending = 0")
    }
    sensors = tuple(
        DaySensor(*r) for r in db.execute("SELECT day, sensor, rows, newest FROM day_sensors ORDER BY day, sensor")
    )
    listed = [decode_file(r) for r in db.execute(f"SELECT {FILE_COLUMNS} FROM files ORDER BY path")]
    count, quarantined, last = db.execute(
        "SELECT count(*), COALESCE(sum(quarantined), 0), max(last_ingest) FROM sources"
    ).fetchone()
    return LedgerState(
        files, version, meta.get("store_id"), int(meta.get("generation", 0)), days, partials, rollups, sensors,
        tuple(f for f in listed if f.day is not None), tuple(f for f in listed if f.day is None),
        SourcesSummary(count, quarantined, last),
        frozenset(r[0] for r in db.execute("SELECT day FROM days WHERE pruned = 1")) if version >= 6 else frozenset(),
    )  # fmt: skip


def listed_now(files: StoreFS) -> dict[str, FileStamp | None] | None:
    """Every file the ledger lists now (record, notice, partial and roll-up
    files, relative paths) with its stamp: a reader whose file is gone or
    changed asks it to tell a store that changed under it from a damaged
    one. None when the ledger cannot be read."""
    try:
        now = read_state(files)
    except StoreError:
        return None
    root = files.root
    listed = {f.path: f.stamp for f in (*now.record_files, *now.side_files)}
    for p in now.partials:
        listed.update({files.rel(path): stamp for path, stamp in zip(p.paths(root), p.stamps())})
    for r in now.rollups.values():
        listed.update({files.rel(path): stamp for path, stamp in zip(r.paths(root), r.stamps())})
    return listed
