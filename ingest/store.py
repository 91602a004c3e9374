"""The store: Hive-partitioned Parquet files and the ledger that owns them.

Layout (DESIGN.md):

    conn/date=YYYY-MM-DD/<source-id>-<chunk>.parquet
    aggregates/servers/date=YYYY-MM-DD/<partial>.parquet
    aggregates/clients/date=YYYY-MM-DD/<partial>.parquet
    rollups/servers/month=YYYY-MM/<roll-up>.parquet
    rollups/clients/month=YYYY-MM/<roll-up>.parquet
    quarantine/<source-id>-<chunk>.jsonl
    notices/<source-id>-<chunk>.parquet          the sensor's SynAck notices (notice.log)
    identity/<source-id>-<chunk>.parquet         what servers are (software, ssh, ssl, x509, dhcp logs)
    synack-store.json                            the store's identity and newest generation
    ledger.sqlite                                (ingest.ledger)
    lock

This module holds a writer's view of a store: its lock, its commits and
its recovery; ingest.compaction merges what is committed; ingest.ledger
is the only code that speaks SQL.

A chunk is committed in three steps: (1) its files are written under
temporary names (a leading dot, so Parquet readers skip them) and fsynced;
(2) one ledger transaction records the files with their stamps (size,
CRC) and the source's new offset; (3) the files are renamed into place. A
crash before (2) leaves only temporary files, which recovery deletes; a
crash after (2) leaves committed files still under their temporary names,
which recovery renames (readers meanwhile read them under those names).
Either way the store holds exactly the old or the new state, and
re-reading a source resumes at the committed offset, so nothing is lost or
counted twice.

A file a compaction replaces is *retired*, not deleted: in the transaction
that swaps it out it is recorded in the ledger's `retired` table, then it
is moved at once to a hidden name (ingest.store_files.retired_name: a
reader that lists the folders, DuckDB or Spark, never counts it twice) and
deleted once `grace` seconds have passed, so a reader whose snapshot
still names it finds it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import pyarrow.fs as pafs

from synack.ingest import fault_points
from synack.ingest.chunk_files import (
    CONN_DIR,
    QUARANTINE_DIR,
    ChunkFiles,
    remove_temporaries,
    write_quarantine,
)
from synack.ingest.errors import StoreError, StoreLocked
from synack.ingest.file_modes import FILE, make_dirs
from synack.ingest.ledger import (
    LEDGER_VERSION,
    BlockMark,
    ChunkRow,
    ChunkSpan,
    FileRow,
    Ledger,
    SourceState,
    now_seconds,
)
from synack.ingest.line_parsing import Quarantined
from synack.ingest.partials import AGGREGATES_DIR, Partial
from synack.ingest.rollups import ROLLUPS_DIR, SIGHTINGS_DIR, Rollup
from synack.ingest.sensor_notices import NOTICES_DIR
from synack.ingest.server_identity import IDENTITY_DIR
from synack.ingest.store_files import (
    LEDGER,
    LOCK,
    FileDamaged,
    StoreFS,
    io_error,
    locate,
    retired_name,
    tmp_name,
)
from synack.ingest.store_identity import MARKER, Marker, check_ledger, read_marker, write_marker

__all__ = ["CONN_DIR", "LEDGER_VERSION", "QUARANTINE_DIR", "SourceState", "Store"]

#: Damaged files set aside by one compaction run before it gives up.
_MENDS = 8
#: Where damaged files are set aside (their path below it is their path in the store).
DAMAGED_DIR = "damaged"
#: Seconds between two writes of the store's marker by a writer that commits often (and at its close).
MARK_EVERY = 1.0
#: Seconds a retired file stays readable (under its hidden name) for readers whose snapshot names it.
DEFAULT_RETIRE_GRACE = 15 * 60.0


@dataclass(frozen=True)
class CommitResult:
    """What one committed chunk added."""

    rows: int
    quarantined: int
    days: tuple[str, ...]
    newest: dt.datetime | None = None
    notices: int = 0
    identities: int = 0


class Store:
    """A synack store (its files at `files`, its ledger) open for writing;
    use `Store.open(...)` as a context manager, which takes the store's
    lock, checks that the ledger is this store's and current, and runs
    recovery."""

    def __init__(self, files: StoreFS, ledger: Ledger, grace: float) -> None:
        self.files = files
        self.root = files.root
        self.ledger = ledger
        self.grace = grace
        #: What this writer set aside and redid (a damaged aggregate met by a compaction), one line each.
        self.repairs: list[str] = []
        self._blocks: dict[str, tuple[int, bool]] | None = None
        self._marked, self._marked_at = -1, float("-inf")  # the generation the marker holds, and since when

    @classmethod
    @contextmanager
    def open(cls, root: StoreFS | Path | str, *, create: bool = True, ledger: Path | str | None = None,
             grace: float = DEFAULT_RETIRE_GRACE) -> Iterator[Store]:  # fmt: skip
        """Open (creating it if `create`) the store at `root` (a directory or
        an object-storage URL, see ingest.store_files) with its ledger at
        `ledger` (default: beside a local store), exclusively. Files it
        retires are deleted `grace` seconds later.

        Raises StoreLocked when another process holds it, StoreError when
        `root` is not a usable store, or the ledger is not this store's or
        is behind it (ingest.store_identity).
        """
        files = locate(root, ledger)
        _check_location(files, create)
        with store_lock(files):
            marker = store_marker(files)
            if marker is not None and not files.ledger.exists():
                raise StoreError(
                    f"store {files} belongs to another ledger (store id {marker.store_id}); {files.ledger} does "
                    "not exist: pass this store's own ledger (--ledger)"
                )
            try:
                records = bool(files.files_under(files.root / CONN_DIR))
            except OSError as err:
                raise StoreError(f"cannot read store {files}: {err}") from None
            book = Ledger.open(files, records_exist=records)
            try:
                check_ledger(files, book.store_id, book.generation, marker, writing=True)
                store = cls(files, book, grace)
                book.on_commit = store._mark
                if marker is None or marker.generation != book.generation:
                    store._mark(now=True)
                else:
                    store._marked = marker.generation
                store.recover()
                yield store
                store.mark()
            except OSError as err:
                raise StoreError(io_error(err, files)) from None
            finally:
                book.close()

    def mark(self) -> None:
        """Bring the marker up to the ledger's generation now (a writer's close, a watcher's pass)."""
        if self._marked != self.ledger.generation:
            self._mark(now=True)

    def _mark(self, *, now: bool = False) -> None:
        """Write the marker: this store's identity and its ledger's newest
        generation; after a commit at most every MARK_EVERY seconds (a marker
        behind the ledger is the normal state after a crash, never a
        refusal: a backup of the ledger is refused once the marker passes it)."""
        if not now and time.monotonic() - self._marked_at < MARK_EVERY:
            return
        generation = self.ledger.generation
        try:
            write_marker(self.files, Marker(self.ledger.store_id, generation))
        except OSError as err:
            raise StoreError(io_error(err, self.files)) from None
        self._marked, self._marked_at = generation, time.monotonic()

    # -- reading the ledger -------------------------------------------------

    def source_state(self, source_id: str) -> SourceState | None:
        """Return the ledger's record of `source_id`, or None if never ingested."""
        return self.ledger.source_state(source_id)

    def known_blocks(self) -> dict[str, tuple[int, bool]]:
        """The header blocks read so far (ingest.log_blocks), read from the
        ledger once and kept current by this writer's commits."""
        if self._blocks is None:
            self._blocks = self.ledger.known_blocks()
        return self._blocks

    # -- committing ---------------------------------------------------------

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
        blocks: tuple[BlockMark, ...] = (),
        tail: tuple[str, int] = ("", 0),
    ) -> CommitResult:
        """Record written chunk files in the ledger and publish them (steps 2
        and 3 of a commit). Calls must come in chunk order, one at a time.

        Raises StoreError if the ledger's offset for the source is not
        `byte_start` (another writer got there first); the files are removed.
        """
        planned = files.planned
        fault_points.reached("files-written")
        span = ChunkSpan(chunk_no, byte_start, byte_end, line_start, line_end, files.rows, files.quarantined)
        chunk = ChunkRow(source_id, kind, str(path), span, header, complete, blocks, tail)
        rows = [FileRow(self.files.rel(f), source_id, chunk_no, day, n, stamp) for f, day, n, stamp in planned]
        written = [f for f, *_ in planned] + [f for p in files.partials for f in p.paths(self.root)]
        with self.transaction(cleanup=written):
            self.ledger.add_chunk(chunk, rows, files.partials, files.sensors)
            fault_points.reached("before-ledger-commit")
        fault_points.reached("ledger-committed")
        self._known_now(list(blocks))
        self.publish([f for f, *_ in planned])
        self.publish_partials(files.partials)
        days = tuple(sorted({d for _, d, _, _ in planned if d is not None}))
        return CommitResult(files.rows, files.quarantined, days, files.newest, files.notices, files.identities)

    def commit_batch(self, files: ChunkFiles, batch_id: str, chunks: list[ChunkRow],
                     seen: list[tuple[Path, int, int, str]]) -> CommitResult:  # fmt: skip
        """Record the written files of a batch of small logs (ingest.small_batches),
        owned by `batch_id`, with each log's chunk and the log files read to
        their end (`seen`: path, size, mtime, source), in one transaction;
        publish them."""
        planned = files.planned
        fault_points.reached("files-written")
        rows = [FileRow(self.files.rel(f), batch_id, 0, day, n, stamp) for f, day, n, stamp in planned]
        written = [f for f, *_ in planned] + [f for p in files.partials for f in p.paths(self.root)]
        with self.transaction(cleanup=written):
            for i, chunk in enumerate(chunks):
                first = i == 0
                self.ledger.add_chunk(chunk, rows if first else [], files.partials if first else (),
                                      files.sensors if first else ())  # fmt: skip
            self.ledger.add_seen((_seen_key(path, False), size, mtime, source) for path, size, mtime, source in seen)
            fault_points.reached("before-ledger-commit")
        fault_points.reached("ledger-committed")
        self._known_now([m for c in chunks for m in c.blocks])
        self.publish([f for f, *_ in planned])
        self.publish_partials(files.partials)
        days = tuple(sorted({d for _, d, _, _ in planned if d is not None}))
        return CommitResult(files.rows, files.quarantined, days, files.newest)

    def _known_now(self, blocks: list[BlockMark]) -> None:
        """Keep the known header blocks current after a commit of `blocks`."""
        if self._blocks is None:
            return
        for mark in blocks:
            have = self._blocks.get(mark.block_id, (0, False))
            self._blocks[mark.block_id] = (max(have[0], mark.bytes), have[1] or mark.ended)

    def quarantine_file(self, source_path: Path, reason: str) -> PurePath:
        """Record a whole file that cannot be read; return the quarantine file.

        The record's name derives from the file's path, so re-running
        replaces it rather than adding a second one.
        """
        digest = hashlib.sha256(str(source_path.resolve()).encode()).hexdigest()[:24]
        final = self.root / QUARANTINE_DIR / f"file-{digest}.jsonl"
        write_quarantine(self.files, [Quarantined(0, reason, b"")], source_path, tmp_name(final))
        self.files.move(tmp_name(final), final)
        self.files.sync_dirs([final.parent])
        return final

    def file_unchanged(self, path: Path, size: int, mtime_ns: int, twin: bool = False) -> bool:
        """True when `path` was read to its end at exactly this size and mtime
        (with `twin`: read for its second source, an EVE file's identity events)."""
        return self.ledger.file_unchanged(_seen_key(path, twin), size, mtime_ns)

    def remember_file(self, path: Path, size: int, mtime_ns: int, source_id: str, twin: bool = False) -> None:
        """Record that `path` (this size and mtime) holds nothing more to read (for its twin source)."""
        self.ledger.remember_file(_seen_key(path, twin), size, mtime_ns, source_id)

    def mark_complete(self, source_id: str) -> None:
        """Record that `source_id` was read to its end (nothing more will come)."""
        self.ledger.mark_complete(source_id)

    @contextmanager
    def transaction(self, cleanup: list[PurePath]) -> Iterator[None]:
        """One ledger transaction (Ledger.transaction); on failure the
        temporary files of `cleanup` (final paths) are removed."""
        try:
            with self.ledger.transaction():
                yield
        except BaseException:
            remove_temporaries(self.files, cleanup)
            raise

    # -- publishing and retiring ----------------------------------------------

    def publish(self, finals: list[PurePath]) -> None:
        """Move committed record, quarantine and notice files into place, then clear their pending flag."""
        _rename_into_place(self.files, finals)
        if finals:
            self.ledger.published_files([self.files.rel(f) for f in finals])

    def publish_partials(self, partials: Iterable[Partial]) -> None:
        """Move committed partials' files into place, then clear their pending flag."""
        partials = list(partials)
        _rename_into_place(self.files, [f for p in partials for f in p.paths(self.root)])
        if partials:
            self.ledger.published_partials(partials)

    def publish_rollup(self, rollup: Rollup) -> None:
        _rename_into_place(self.files, rollup.paths(self.root))
        self.ledger.published_rollup(rollup)

    def retire(self, paths: Iterable[PurePath]) -> list[PurePath]:
        """Record replaced files as retired (inside the caller's transaction);
        return them, for `hide` once the transaction commits."""
        paths = list(paths)
        self.ledger.retire([self.files.rel(p) for p in paths], now_seconds())
        return paths

    def hide(self, paths: Iterable[PurePath], keep: Iterable[PurePath] = ()) -> None:
        """Move retired files to their hidden names (after the commit that
        retired them), except those in `keep` (a file of the same name was
        committed again); then delete the retired files past their grace."""
        kept = set(keep)
        moved = [p for p in paths if p not in kept and self.files.exists(p)]
        for path in moved:
            self.files.move(path, retired_name(path))
        self.files.sync_dirs(p.parent for p in moved)
        self.collect_retired()

    def collect_retired(self, grace: float | None = None) -> int:
        """Delete the retired files older than the grace period (`grace`
        seconds, default the store's); return how many."""
        cutoff = now_seconds() - (self.grace if grace is None else grace)
        old = self.ledger.retired(before=cutoff)
        for rel in old:
            self.files.remove(retired_name(self.root / rel))
        if old:
            self.files.sync_dirs((self.root / rel).parent for rel in old)
            self.ledger.forget_retired(old)
        return len(old)

    # -- compaction (ingest.compaction) -----------------------------------------

    def days_without_partials(self) -> list[str]:
        """Days whose records have no partials (a store written before them)."""
        return self.ledger.days_without_partials()

    def compact_source(self, source_id: str) -> int:
        from synack.ingest.compaction import compact_source

        return compact_source(self, source_id)

    def compact_identity(self) -> int:
        from synack.ingest.identity_files import compact_identity

        return compact_identity(self)

    def compact_days(self, days: Iterable[str], stop: Callable[[], bool] | None = None, runner: Any = None) -> int:
        from synack.ingest.compaction import compact_days

        days = list(days)
        return self._mending(lambda: compact_days(self, days, stop, runner))

    def roll_up_months(self, stop: Callable[[], bool] | None = None) -> int:
        from synack.ingest.compaction import roll_up_months

        return self._mending(lambda: roll_up_months(self, stop))

    def rebuild_aggregates(self, days: list[str] | None = None, stop: Callable[[], bool] | None = None,
                           runner: Any = None, merge_runner: Any = None) -> list[str]:  # fmt: skip
        from synack.ingest.compaction import rebuild_aggregates

        return rebuild_aggregates(self, days, stop, runner, merge_runner)

    def _mending(self, work: Callable[[], int]) -> int:
        """Run a compaction; when it meets a damaged or missing aggregate
        file, set the file aside (under damaged/), redo what it covered (a
        day's partials from its records, a month's roll-up from its days),
        note it in `repairs`, and run the compaction again."""
        for _ in range(_MENDS):
            try:
                return work()
            except (FileDamaged, FileNotFoundError) as err:
                path = err.path if isinstance(err, FileDamaged) else PurePath(str(err.filename))
                if not self._mend(path):
                    raise
        return work()

    def _mend(self, path: PurePath) -> bool:
        """Set the damaged aggregate file `path` aside and redo what it covered; False when it is no aggregate."""
        from synack.ingest.compaction import rebuild_aggregates

        rel = self.files.rel(path) if str(path).startswith(str(self.root)) else str(path)
        parts = rel.split("/")
        if len(parts) != 4 or parts[0] not in (AGGREGATES_DIR, ROLLUPS_DIR, SIGHTINGS_DIR):
            return False
        period = parts[2].split("=", 1)[-1]
        aside = self.root / DAMAGED_DIR / rel
        if self.files.exists(self.root / rel):
            self.files.move(self.root / rel, aside)
            self.files.sync_dirs([aside.parent, (self.root / rel).parent])
        if parts[0] in (ROLLUPS_DIR, SIGHTINGS_DIR):
            rollup = self.ledger.rollups(month=period, pending=None).get(period)
            with self.transaction(cleanup=[]):
                retired = self.retire(rollup.paths(self.root)) if rollup is not None else []
                self.ledger.delete_rollup(period)
            self.hide(retired)
            self.repairs.append(f"set the damaged roll-up {rel} aside (in {DAMAGED_DIR}/); {period} is "
                                "rolled up again from its days")  # fmt: skip
        else:
            rebuild_aggregates(self, [period])
            self.repairs.append(f"set the damaged aggregate {rel} aside (in {DAMAGED_DIR}/) and rebuilt day "
                                f"{period}'s aggregates from its records")  # fmt: skip
        return True

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
        place; retired files not yet hidden are hidden (those past their
        grace deleted); temporary files the ledger does not know are
        deleted. Returns how many files were changed. Raises StoreError if
        a committed file is gone.
        """
        book = self.ledger
        files = [self.root / f.path for f in book.file_rows(pending=True)]
        partials = book.partials(pending=True)
        rollups = book.rollups(pending=True).values()
        changed = self._rename_unpublished(files)
        changed += self._rename_unpublished([f for p in partials for f in p.paths(self.root)])
        changed += self._rename_unpublished([f for r in rollups for f in r.paths(self.root)])
        if files or partials or rollups:
            book.publish_all()
        live = {self.root / f.path for f in book.file_rows()}
        live |= {f for p in book.partials(pending=None) for f in p.paths(self.root)}
        live |= {f for r in book.rollups(pending=None).values() for f in r.paths(self.root)}
        self.hide([self.root / rel for rel in book.retired()], keep=live)
        for top in (CONN_DIR, QUARANTINE_DIR, NOTICES_DIR, IDENTITY_DIR, AGGREGATES_DIR, ROLLUPS_DIR, SIGHTINGS_DIR,
                    "daily"):  # fmt: skip
            for path in self.files.temporaries(self.root / top):
                self.files.remove(path)
                changed += 1
        return changed


def move_aside(files: StoreFS, path: PurePath) -> PurePath:
    """Move the store file `path` under damaged/ (keeping its path below the root); return where it went."""
    target = files.root / DAMAGED_DIR / files.rel(path)
    files.move(path, target)
    files.sync_dirs([path.parent, target.parent])
    return target


@contextmanager
def store_lock(files: StoreFS) -> Iterator[None]:
    """Hold the store's single-writer lock (a local store's lock is in its
    directory, whichever ledger is named). Raises StoreLocked or StoreError."""
    try:
        make_dirs(files.lock.parent)
        fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, FILE)
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
    try:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as err:
            raise StoreError(io_error(OSError(err.errno, err.strerror, str(files.lock)), files)) from None
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


#: Appended to a file's path in the ledger's files_seen for its twin source (no path holds a NUL).
_TWIN_KEY = "\0identity"


def _seen_key(path: Path, twin: bool) -> str:
    return str(path.resolve()) + (_TWIN_KEY if twin else "")


def store_marker(files: StoreFS) -> Marker | None:
    """The store's marker (ingest.store_identity), None when it has none. Raises StoreError."""
    try:
        return read_marker(files)
    except OSError as err:
        raise StoreError(f"cannot read store {files}: {err}") from None


def _rename_into_place(store: StoreFS, finals: list[PurePath]) -> None:
    """Move committed files from their temporary names into place and make the moves durable."""
    for i, final in enumerate(finals):
        store.move(tmp_name(final), final)
        if i == 0:
            fault_points.reached("first-rename")
    store.sync_dirs(f.parent for f in finals)


def _check_location(files: StoreFS, create: bool) -> None:
    """Raise StoreError unless `files` is a store (or, with `create`, may become one)."""
    if files.local:
        root = Path(files.root)
        if not root.exists():
            if not create:
                raise StoreError(f"no synack store at {root}")
            try:
                make_dirs(root)
            except OSError as err:
                raise StoreError(f"cannot create store {root}: {err.strerror}") from None
        if not root.is_dir():
            raise StoreError(f"store path {root} is not a directory")
        # A first run that failed (a full disk, say) may have left only the lock.
        if any(p.name not in (LOCK, MARKER) for p in root.iterdir()) and not files.ledger.exists():
            if files.ledger.parent == root or not (root / MARKER).exists():
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
