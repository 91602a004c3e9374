"""The store: Hive-partitioned Parquet files and the ledger that owns them.

Layout (DESIGN.md):

    conn/date=YYYY-MM-DD/<source-id>-<chunk>.parquet
    quarantine/<source-id>-<chunk>.jsonl
    ledger.sqlite
    lock

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
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.errors import StoreError, StoreLocked
from ingest.line_parsing import Quarantined

CONN_DIR = "conn"
QUARANTINE_DIR = "quarantine"
LEDGER = "ledger.sqlite"  # tables: sources, chunks, files, days (see _SCHEMA)
LOCK = "lock"
PARQUET_COMPRESSION = "zstd"
#: A finished source's files of a day are merged when they average fewer rows.
COMPACT_BELOW_ROWS = 20_000

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

    planned: list[tuple[Path, str | None, int]]  # final path, day (None: quarantine), rows
    rows: int
    quarantined: int
    newest: dt.datetime | None = None  # the latest record time in the chunk


@dataclass(frozen=True)
class CommitResult:
    """What one committed chunk added."""

    rows: int
    quarantined: int
    days: tuple[str, ...]
    newest: dt.datetime | None = None


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


def _tmp_name(final: Path) -> Path:
    return final.with_name("." + final.name + ".tmp")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """A synack store rooted at `root`; use `Store.open(root)` as a context
    manager, which takes the store's lock and runs recovery."""

    def __init__(self, root: Path, db: sqlite3.Connection, lock_fd: int) -> None:
        self.root = root
        self._db = db
        self._lock_fd = lock_fd

    @classmethod
    @contextmanager
    def open(cls, root: Path | str, *, create: bool = True) -> Iterator[Store]:
        """Open (creating it if `create`) the store at `root`, exclusively.

        Raises StoreLocked when another process holds it, StoreError when
        `root` is not a usable store.
        """
        root = Path(root)
        if not root.exists():
            if not create:
                raise StoreError(f"no synack store at {root}")
            try:
                root.mkdir(parents=True)
            except OSError as err:
                raise StoreError(f"cannot create store {root}: {err.strerror}") from None
        if not root.is_dir():
            raise StoreError(f"store path {root} is not a directory")
        if any(root.iterdir()) and not (root / LEDGER).exists():
            raise StoreError(f"{root} is not empty and holds no {LEDGER}: not a synack store")
        try:
            fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StoreError(f"cannot open store {root}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise StoreLocked(
                f"store {root} is in use by another synack process (pid {holder}); wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        db = sqlite3.connect(root / LEDGER, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            store = cls(root, db, fd)
            store.recover()
            yield store
        finally:
            db.close()
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- reading the ledger -------------------------------------------------

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

    def write_chunk_files(
        self, source_id: str, path: Path, chunk_no: int, table: pa.Table | None, quarantined: list[Quarantined]
    ) -> ChunkFiles:
        """Write a chunk's files under temporary names (step 1 of a commit).

        Safe to run on several threads at once for different chunks. Raises
        StoreError (leaving nothing behind) when the store is unwritable.
        """
        planned: list[tuple[Path, str | None, int]] = []
        try:
            if table is not None and len(table):
                for day, part in _split_by_day(table):
                    final = self.root / CONN_DIR / f"date={day}" / f"{source_id}-{chunk_no:06d}.parquet"
                    _write_parquet(part, _tmp_name(final))
                    planned.append((final, day, len(part)))
            if quarantined:
                final = self.root / QUARANTINE_DIR / f"{source_id}-{chunk_no:06d}.jsonl"
                _write_quarantine(quarantined, path, _tmp_name(final))
                planned.append((final, None, len(quarantined)))
        except OSError as err:
            for final, _, _ in planned:
                _tmp_name(final).unlink(missing_ok=True)
            raise StoreError(f"cannot write to store {self.root}: {err.strerror}") from None
        newest = pc.max(table.column("ts")).as_py() if table is not None and len(table) else None
        return ChunkFiles(planned, len(table) if table is not None else 0, len(quarantined), newest)

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
        files = self.write_chunk_files(source_id, path, chunk_no, table, quarantined)
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
                [(str(f.relative_to(self.root)), source_id, chunk_no, day, n) for f, day, n in planned],
            )
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
        except BaseException:
            db.execute("ROLLBACK")
            for final, _, _ in planned:
                _tmp_name(final).unlink(missing_ok=True)
            raise
        _fault("ledger-committed")
        self._publish([f for f, _, _ in planned])
        days = tuple(sorted({d for _, d, _ in planned if d is not None}))
        return CommitResult(rows, quarantined_count, days, files.newest)

    def quarantine_file(self, source_path: Path, reason: str) -> Path:
        """Record a whole file that cannot be read; return the quarantine file.

        The record's name derives from the file's path, so re-running
        replaces it rather than adding a second one.
        """
        digest = hashlib.sha256(str(source_path.resolve()).encode()).hexdigest()[:24]
        final = self.root / QUARANTINE_DIR / f"file-{digest}.jsonl"
        _write_quarantine([Quarantined(0, reason, b"")], source_path, _tmp_name(final))
        os.replace(_tmp_name(final), final)
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

    def _publish(self, finals: list[Path]) -> None:
        """Rename committed files into place, then clear their pending flag."""
        for i, final in enumerate(finals):
            os.replace(_tmp_name(final), final)
            if i == 0:
                _fault("first-rename")
        for d in {f.parent for f in finals}:
            _fsync_dir(d)
        if finals:
            self._db.executemany(
                "UPDATE files SET pending = 0 WHERE path = ?", [(str(f.relative_to(self.root)),) for f in finals]
            )

    # -- compaction ---------------------------------------------------------

    def compact_source(self, source_id: str) -> int:
        """Merge each day's chunk files of a finished source into one file; return files removed.

        A live log followed every 30 s leaves one small file per pass; once
        the log is complete they are merged. One ledger transaction swaps
        the old files for the new one; the old files are deleted before the
        new one is renamed into place, so a reader may miss the day for an
        instant but never sees it twice, and a crash anywhere is finished by
        recovery.
        """
        rows = self._db.execute(
            "SELECT path, day, chunk, rows FROM files WHERE source_id = ? AND day IS NOT NULL AND pending = 0 "
            "ORDER BY chunk",
            (source_id,),
        ).fetchall()
        by_day: dict[str, list[tuple[str, int, int]]] = {}
        for path, day, chunk, n in rows:
            by_day.setdefault(day, []).append((path, chunk, n))
        removed = 0
        for day, parts in sorted(by_day.items()):
            if len(parts) < 2 or sum(n for _, _, n in parts) / len(parts) >= COMPACT_BELOW_ROWS:
                continue  # nothing to merge, or files already large (a batch ingest's chunks)
            tables = [pq.read_table(self.root / p) for p, _, _ in parts]
            merged = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries().combine_chunks()
            last = max(c for _, c, _ in parts)
            final = self.root / CONN_DIR / f"date={day}" / f"{source_id}-c{last:06d}.parquet"
            _write_parquet(merged, _tmp_name(final))
            old = [p for p, _, _ in parts]
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in old])
                db.executemany("INSERT OR IGNORE INTO garbage VALUES (?)", [(p,) for p in old])
                db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,1)",
                    (str(final.relative_to(self.root)), source_id, last, day, len(merged)),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                _tmp_name(final).unlink(missing_ok=True)
                raise
            _fault("compaction-committed")
            self._collect_garbage()
            self._publish([final])
            removed += len(old)
        return removed

    def _collect_garbage(self) -> None:
        """Delete the files a committed compaction replaced."""
        paths = [r[0] for r in self._db.execute("SELECT path FROM garbage").fetchall()]
        for rel in paths:
            (self.root / rel).unlink(missing_ok=True)
        if paths:
            dirs = {(self.root / rel).parent for rel in paths}
            for d in dirs:
                if d.exists():
                    _fsync_dir(d)
            self._db.executemany("DELETE FROM garbage WHERE path = ?", [(p,) for p in paths])

    # -- recovery -----------------------------------------------------------

    def recover(self) -> int:
        """Bring the files in line with the ledger after a crash.

        Committed files still under their temporary names are renamed into
        place; temporary files the ledger does not know are deleted. Returns
        how many files were changed. Raises StoreError if a committed file
        is gone.
        """
        changed = 0
        pending = self._db.execute("SELECT path FROM files WHERE pending = 1").fetchall()
        finals: list[Path] = []
        for (rel,) in pending:
            final = self.root / rel
            if not final.exists():
                if not _tmp_name(final).exists():
                    raise StoreError(f"store {self.root} is damaged: committed file {rel} is missing")
                finals.append(final)
                changed += 1
            else:
                self._db.execute("UPDATE files SET pending = 0 WHERE path = ?", (rel,))
        self._collect_garbage()
        self._publish(finals)
        for top in (CONN_DIR, QUARANTINE_DIR):
            base = self.root / top
            if base.exists():
                for tmp in base.rglob(".*.tmp"):
                    tmp.unlink()
                    changed += 1
        return changed


def _split_by_day(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Yield (YYYY-MM-DD, rows of that UTC day) for the days in `table`."""
    days = pc.cast(table.column("ts"), pa.date32())
    unique = pc.unique(days).to_pylist()
    if len(unique) == 1:
        yield unique[0].isoformat(), table
        return
    for day in sorted(unique):
        yield day.isoformat(), table.filter(pc.equal(days, pa.scalar(day, pa.date32())))


#: Columns whose min/max statistics serve queries (pruning by time and port).
_STATISTICS = ["ts", "server_p", "resp_p", "orig_p"]


def _write_parquet(table: pa.Table, tmp: Path) -> None:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    # Parquet dictionary pages only where Arrow already has a dictionary:
    # trying them on unique columns (uid, ts) costs time and saves nothing.
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    write_parquet_synced(
        table,
        tmp,
        compression=PARQUET_COMPRESSION,
        row_group_size=1 << 20,
        use_dictionary=dictionary,
        write_statistics=[c for c in _STATISTICS if c in table.column_names],
    )


def write_parquet_synced(table: pa.Table, path: Path, **options: Any) -> None:
    """Write `table` to `path` with `pq.write_table(**options)` and fsync it.

    Arrow writes through its own file stream: a Python file object would
    take the GIL for every page, stalling the threads that parse meanwhile.
    """
    with pa.OSFile(str(path), "wb") as sink:
        pq.write_table(table, sink, **options)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_quarantine(entries: list[Quarantined], source_path: Path, tmp: Path) -> None:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for q in entries:
            record = {
                "file": str(source_path),
                "line": q.line,
                "reason": q.reason,
                "text": q.text.decode("utf-8", "backslashreplace"),
            }
            f.write(json.dumps(record, ensure_ascii=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
