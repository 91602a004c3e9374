"""`synack check --adopt`: a store's ledger rebuilt from the files the store holds.

A ledger restored from a backup, copied earlier, damaged or lost is
behind the store's files (ingest.store_identity refuses it). Adoption
brings a ledger up to the files instead of the files down to the ledger:

1. The old ledger (when it can be read and is this store's) is the base:
   what only it knows stays (sources whose newest chunks wrote no file,
   pruned days, files the store no longer holds are reported lost).
   It is kept beside the new one as `<ledger>.before-adopt-<time>`.
2. Every record, notice, identity and quarantine file in place is read
   whole (every page's checksum verified) and listed with its stamp; its
   provenance (ingest.provenance) says which chunks of which sources it
   holds. A file whose chunks another file in place holds too (a copy) is
   moved under damaged/; a retired file whose chunks no file in place
   holds (a crash between a compaction's commit and its publishing) is
   put back. A file that cannot be read is moved under damaged/.
3. Each source's offset, next line, header and chunk numbers are the
   union of what the base and the files say, so reading the logs again
   resumes where the store's files end: nothing doubled, nothing skipped.
4. Each day's records are counted from its files; every partial
   aggregate and roll-up is rebuilt from the records (a pruned day keeps
   the aggregates the base lists); aggregate files left over are retired.
5. The new ledger is swapped in atomically (after the old one's
   write-ahead files are gone, so SQLite cannot replay them onto it), at a
   generation above the store's marker, and the marker is rewritten.

A crash before the swap leaves the old ledger in place (run adopt again);
after it, the new one, whose aggregates a second adopt or `synack
rebuild` finishes. Files written before provenance (an older synack)
are listed too; their sources' offsets can come only from the base, and
the report says so.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import pyarrow as pa
import pyarrow.parquet as pq

from synack.ingest.chunk_files import CONN_DIR, QUARANTINE_DIR
from synack.ingest.errors import StoreError
from synack.ingest.ledger import (
    BlockMark,
    ChunkSpan,
    FileRow,
    Ledger,
    SourceRow,
    new_store_id,
    read_state,
)
from synack.ingest.ledger.migrations import copy_ledger
from synack.ingest.partials import AGGREGATES_DIR
from synack.ingest.provenance import Provenance, SourceFacts, from_schema, union
from synack.ingest.rollups import ROLLUPS_DIR, SIGHTINGS_DIR
from synack.ingest.sensor_notices import NOTICES_DIR
from synack.ingest.server_identity import IDENTITY_DIR
from synack.ingest.store import Store, move_aside, store_lock, store_marker
from synack.ingest.store_files import FileStamp, StoreFS, locate, retired_name
from synack.ingest.store_identity import MARKER, Marker, write_marker
from synack.ingest.visible import plural

_DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_CHUNK_NAME = re.compile(r"^(?P<source>.+)-c?(?P<chunk>\d{6})$")
_RETIRED = ".retired"


@dataclass
class AdoptReport:
    """What an adoption found and did, one line each (`lines`), and its totals."""

    lines: list[str] = field(default_factory=list)
    files: int = 0
    records: int = 0
    sources: int = 0
    days_rebuilt: int = 0
    lost_records: int = 0


@dataclass(frozen=True)
class _Found:
    """A store file found on disk: where it is now and where it belongs."""

    path: PurePath  # where it is (a retired file under its hidden name)
    final: PurePath  # where it belongs
    retired: bool
    day: str | None
    rows: int
    stamp: FileStamp
    provenance: Provenance | None

    def keys(self) -> frozenset[tuple[str, int]] | None:
        """The (source, chunk) pairs it holds (of its day), None when it does not say."""
        if self.provenance is None:
            return None
        return frozenset((s, c.chunk) for s, facts in self.provenance.sources.items() for c in facts.chunks)


def adopt_store(root: StoreFS | Path | str, *, ledger: Path | str | None = None) -> AdoptReport:
    """Rebuild the ledger of the store at `root` (its ledger at `ledger`,
    default beside a local store) from the store's files, keeping what the
    old ledger alone knows (see the module). Safe to run again. Raises
    StoreError when `root` is no store, the ledger belongs to another
    store, or the store cannot be written; StoreLocked when a writer has it."""
    files = root if isinstance(root, StoreFS) else locate(root, ledger)
    _check_adoptable(files)
    report = AdoptReport()
    scratch = files.ledger.with_name(files.ledger.name + ".adopting")
    with store_lock(files):
        marker = store_marker(files)
        base = _copy_base(files, scratch, marker, report)
        book = Ledger.open(locate(files.location, scratch), records_exist=False)
        try:
            generation = max(marker.generation if marker else 0, base[1]) + 1
            store_id = (marker.store_id if marker else None) or base[0] or new_store_id()
            record_days = _amend(book, files, report, store_id, generation)
            generation = book.generation
        finally:
            book.close()
        _swap_in(files, scratch, report)
        write_marker(files, Marker(store_id, generation))
    with Store.open(files, create=False) as store:
        _retire_leftover_aggregates(store, report)
        rebuilt = store.rebuild_aggregates(sorted(record_days))
        report.days_rebuilt = len(rebuilt)
        report.lines += store.repairs
    report.lines.append(
        f"adopted {plural(report.files, 'file')} ({plural(report.records, 'record')}) of "
        f"{plural(report.sources, 'source')}; rebuilt the aggregates of {plural(report.days_rebuilt, 'day')} from "
        "their records"
    )
    return report


def _check_adoptable(files: StoreFS) -> None:
    """Raise StoreError unless `files` looks like a store (a marker or records)."""
    if files.local:
        root = Path(files.root)
        if not root.is_dir() or not ((root / MARKER).exists() or (root / CONN_DIR).is_dir()):
            raise StoreError(f"no synack store at {root} (neither a store marker nor records to adopt)")
        return
    try:
        if not files.files_under(files.root):
            raise StoreError(f"no synack store at {files}: it holds no files to adopt")
    except OSError as err:
        raise StoreError(f"cannot reach the store {files}: {err}") from None


def _copy_base(files: StoreFS, scratch: Path, marker: Marker | None, report: AdoptReport) -> tuple[str | None, int]:
    """Copy the old ledger to `scratch` when it can be read and is this
    store's (a fresh scratch otherwise); return its store id and generation."""
    for stale in _with_sidecars(scratch):
        stale.unlink(missing_ok=True)  # an adoption killed before its swap
    if not files.ledger.exists():
        report.lines.append(f"no ledger at {files.ledger}: building one from the store's files alone")
        return None, 0
    try:
        state = read_state(files)
    except StoreError as err:
        report.lines.append(f"the old ledger cannot be read ({err}): building one from the store's files alone")
        return None, 0
    if marker is not None and state.store_id is not None and state.store_id != marker.store_id:
        raise StoreError(
            f"the ledger {files.ledger} belongs to another store (id {state.store_id}), not to {files} (id "
            f"{marker.store_id}): adopt rebuilds a store's own ledger; pass it with --ledger, or move this one "
            "aside to rebuild the ledger from the files alone"
        )
    try:
        copy_ledger(files.ledger, scratch)
    except sqlite3.Error as err:
        report.lines.append(f"the old ledger cannot be copied ({err}): building one from the store's files alone")
        return None, 0
    behind = f", the store is at {marker.generation}" if marker else ""
    report.lines.append(f"the old ledger is at generation {state.generation}{behind}: brought up to the store's files")
    return state.store_id, state.generation


def _amend(book: Ledger, files: StoreFS, report: AdoptReport, store_id: str, generation: int) -> set[str]:
    """Make `book` (the base's copy) list exactly the store's files, its
    sources' offsets the union of the base's and the files', its days
    counted from the files; return the days with records."""
    base_files = {f.path: f for f in book.file_rows()}
    pruned = set(book.pruned_days())
    found = _choose(files, _scan(files, report), pruned, report)
    rows = [_file_row(files, f, base_files) for f in found]
    covered = {(f.day, key) for f in found for key in (f.keys() or ())}
    listed = {r.path for r in rows}
    for rel, old in sorted(base_files.items()):
        if rel in listed or old.day is None:
            continue
        if (old.day, (old.source_id, old.chunk)) not in covered:
            report.lost_records += old.rows
            report.lines.append(f"lost: {rel} ({old.rows:,} records of {old.day}), which the old ledger listed, is "
                                "in no file of the store")  # fmt: skip
    sources = _sources(book, found, report)
    days = Counter[str]()
    for f in found:
        if f.day is not None:
            days[f.day] += f.rows
    retired = _retired_on_disk(files, book.retired_times())
    with book.transaction():
        book.set_identity(store_id, generation)
        book.replace_files(rows)
        for row, spans, marks in sources:
            book.put_source(row, spans)
            book.put_blocks(row.source_id, marks)
        for day, count in book.adopt_days(dict(days)):
            report.lines.append(f"day {day}: the old ledger counted {count:,} records that no file holds")
        book.keep_partials_of(pruned)
        book.replace_retired(retired)
    report.files = len(rows)
    report.records = sum(days.values())
    report.sources = len(book.source_rows())
    return set(days)


def _scan(files: StoreFS, report: AdoptReport) -> list[_Found]:
    """Every record, notice and identity file in place or retired, read
    whole and verified; a file in place that cannot be read is moved aside."""
    found = []
    for top in (CONN_DIR, NOTICES_DIR, IDENTITY_DIR):
        for path in files.files_under(files.root / top):
            retired = path.name.startswith(".") and path.name.endswith(".parquet" + _RETIRED)
            if not retired and (path.name.startswith(".") or path.suffix != ".parquet"):
                continue
            final = path.with_name(path.name[1 : -len(_RETIRED)]) if retired else path
            day = None
            if top == CONN_DIR:
                folder = _DAY_FOLDER.match(final.parent.name)
                if folder is None or final.parent.parent != files.root / CONN_DIR:
                    continue  # not a store file: `synack check` reports it
                day = folder.group(1)
            data = files.read_bytes(path)
            try:
                parquet = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
                for group in range(parquet.num_row_groups):
                    parquet.read_row_group(group)
                rows, provenance = parquet.metadata.num_rows, from_schema(parquet.schema_arrow)
            except (pa.ArrowException, OSError, ValueError) as err:
                if not retired:
                    target = move_aside(files, path)
                    report.lines.append(f"moved {files.rel(path)} to {files.rel(target)}: it cannot be read "
                                        f"({' '.join(str(err).split())[:120]})")  # fmt: skip
                continue
            found.append(_Found(path, final, retired, day, rows, FileStamp.of(data), provenance))
    for path in files.files_under(files.root / QUARANTINE_DIR):
        if path.suffix == ".jsonl" and not path.name.startswith(".") and _CHUNK_NAME.match(path.stem):
            data = files.read_bytes(path)
            lines = data.to_pybytes().count(b"\n")
            found.append(_Found(path, path, False, None, lines, FileStamp.of(data), None))
    return found


def _choose(files: StoreFS, found: list[_Found], pruned: set[str], report: AdoptReport) -> list[_Found]:
    """The files the store holds: those in place (a copy of chunks another
    holds is moved aside), and retired ones holding chunks no file in place
    holds (put back; never on a day pruned on purpose)."""
    groups: dict[tuple[str, str | None], list[_Found]] = {}
    for f in found:
        groups.setdefault((str(f.final.parent), f.day), []).append(f)
    chosen = []
    for _, group in sorted(groups.items()):
        taken: set[tuple[str, int]] = set()
        holder: dict[tuple[str, int], _Found] = {}
        order = sorted(group, key=lambda f: (f.retired, -len(f.keys() or ()), str(f.final)))
        for f in order:
            keys = f.keys()
            if f.retired:
                if keys and not keys & taken and f.day not in pruned and not files.exists(f.final):
                    files.move(f.path, f.final)
                    files.sync_dirs([f.final.parent])
                    report.lines.append(f"put back {files.rel(f.final)}: retired, but no file in place holds its "
                                        f"{f.rows:,} rows")  # fmt: skip
                    f = _Found(f.final, f.final, False, f.day, f.rows, f.stamp, f.provenance)
                else:
                    continue
            elif keys is not None and keys & taken:
                other = holder[min(keys & taken)]
                target = move_aside(files, f.path)
                what = "a copy of rows" if keys <= taken else "rows partly the same as"
                report.lines.append(f"moved {files.rel(f.path)} to {files.rel(target)}: it holds {what} "
                                    f"{files.rel(other.final)} holds")  # fmt: skip
                continue
            chosen.append(f)
            for key in keys or ():
                taken.add(key)
                holder[key] = f
    return chosen


def _file_row(files: StoreFS, f: _Found, base: dict[str, FileRow]) -> FileRow:
    """The ledger's row of a chosen file: its owner from its provenance, the base, or its name."""
    rel = files.rel(f.final)
    if f.provenance is not None:
        source, chunk = f.provenance.owner
    elif rel in base:
        source, chunk = base[rel].source_id, base[rel].chunk
    else:
        name = _CHUNK_NAME.match(f.final.stem)
        source, chunk = (name.group("source"), int(name.group("chunk"))) if name else (f.final.stem, 0)
    return FileRow(rel, source, chunk, f.day, f.rows, f.stamp)


def _sources(book: Ledger, found: list[_Found],
             report: AdoptReport) -> list[tuple[SourceRow, list[ChunkSpan], tuple[BlockMark, ...]]]:  # fmt: skip
    """Each source whose files tell more than the base: its row and chunks,
    the union of the base's and the files' (the files' newest facts win)."""
    told = union(("", 0), (f.provenance for f in found))
    in_files: dict[str, SourceFacts] = dict(told.sources) if told is not None else {}
    base = book.source_rows()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = []
    for source, facts in sorted(in_files.items()):
        old = base.get(source)
        spans = {c.chunk: c for c in (book.chunk_spans(source) if old is not None else [])}
        newer = old is None or facts.newest >= old.chunks - 1
        known = len(spans)
        spans.update({c.chunk: c for c in facts.chunks})
        if old is not None and len(spans) == known and not newer:
            continue  # the base knows all the files say
        ordered = [spans[c] for c in sorted(spans)]
        if old is None or newer:
            kind, path, header, complete, tail = facts.kind, facts.path, facts.header, facts.complete, facts.tail
        else:
            kind, path, header, complete = old.kind, old.last_path, old.header, old.complete
            tail = (old.tail_block, old.tail_start)
        row = SourceRow(
            source, kind, old.first_path if old is not None else path, path, max(c.byte_end for c in ordered),
            max(c.line_end for c in ordered), ordered[-1].chunk + 1, sum(c.rows for c in ordered),
            sum(c.quarantined for c in ordered), header, complete, old.first_ingest if old is not None else now,
            now, *tail,
        )  # fmt: skip
        out.append((row, ordered, facts.blocks))
    legacy = [f for f in found if f.provenance is None and f.day is not None]
    if legacy:
        report.lines.append(f"{len(legacy):,} record files were written by a synack that kept no provenance in "
                            "files: the offsets of their sources are the old ledger's")  # fmt: skip
    return out


def _retired_on_disk(files: StoreFS, times: dict[str, float]) -> dict[str, float]:
    """The retired (hidden) files on disk, by the path they were retired
    from, each with when it was retired (the base's time, else now)."""
    now = dt.datetime.now(dt.UTC).timestamp()
    out = {}
    for top in (CONN_DIR, NOTICES_DIR, IDENTITY_DIR, AGGREGATES_DIR, ROLLUPS_DIR, SIGHTINGS_DIR):
        for path in files.files_under(files.root / top):
            final = path.with_name(path.name[1 : -len(_RETIRED)])
            if path.name.startswith(".") and path.name.endswith(_RETIRED) and retired_name(final) == path:
                out[files.rel(final)] = times.get(files.rel(final), now)
    return out


def _retire_leftover_aggregates(store: Store, report: AdoptReport) -> None:
    """Retire the aggregate and roll-up files the adopted ledger does not
    list (rebuilt from the records); those of a day without records, which
    nothing can rebuild, are moved under damaged/ instead."""
    book, files, root = store.ledger, store.files, store.root
    live = {f for p in book.partials(pending=None) for f in p.paths(root)}
    record_days = set(book.record_days())
    stale, orphans = [], []
    for top in (AGGREGATES_DIR, ROLLUPS_DIR, SIGHTINGS_DIR):
        for path in files.files_under(root / top):
            if path.name.startswith(".") or path.suffix != ".parquet" or path in live:
                continue
            folder = _DAY_FOLDER.match(path.parent.name)
            if top == AGGREGATES_DIR and folder is not None and folder.group(1) not in record_days:
                orphans.append(path)
            else:
                stale.append(path)
    with store.transaction(cleanup=[]):
        retired = store.retire(stale)
    store.hide(retired)
    for path in orphans:
        target = move_aside(files, path)
        report.lines.append(f"moved {files.rel(path)} to {files.rel(target)}: the aggregate of a day without "
                            "records the old ledger did not know was pruned")  # fmt: skip


def _swap_in(files: StoreFS, scratch: Path, report: AdoptReport) -> None:
    """Keep the old ledger as `<ledger>.before-adopt-<time>`, then put the
    scratch ledger in its place atomically."""
    ledger = files.ledger
    if ledger.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = ledger.with_name(f"{ledger.name}.before-adopt-{stamp}")
        try:
            copy_ledger(ledger, kept)
        except sqlite3.Error:
            os.replace(ledger, kept)  # not a database: keep its bytes as they are
        report.lines.append(f"kept the old ledger as {kept}")
    for sidecar in _with_sidecars(ledger)[1:]:
        sidecar.unlink(missing_ok=True)  # an old write-ahead log must not be replayed onto the new ledger
    os.replace(scratch, ledger)
    fd = os.open(ledger.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _with_sidecars(path: Path) -> list[Path]:
    """A SQLite file and its write-ahead and shared-memory files."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
