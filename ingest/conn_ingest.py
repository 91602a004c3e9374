"""Ingesting conn logs into a store, exactly once.

`ingest_paths` is the library call behind `synack ingest`: it finds the
conn logs, and for each one reads only what the ledger has not committed,
parsing the next chunk while the previous one is written and committed on
a background thread (pyarrow releases the GIL in both).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import time
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from synack.ingest import provenance
from synack.ingest.chunk_files import ChunkFiles, write_chunk_files
from synack.ingest.compaction import threaded_merges
from synack.ingest.errors import ClockBehind, NotAConnLog, NotAZeekLog, SynackError
from synack.ingest.file_modes import PRIVATE, open_new
from synack.ingest.ledger import ChunkRow, ChunkSpan, SourceState
from synack.ingest.log_blocks import derived_id
from synack.ingest.log_files import find_conn_logs, is_eve_log_name
from synack.ingest.log_source import (
    CLOSING_KINDS,
    DEFAULT_CHUNK_BYTES,
    NOTICE_KINDS,
    SURICATA_EVE,
    Chunk,
    LogSource,
    NotGzip,
    RawBlock,
    ReadState,
    Span,
    block_at,
    blocks_before,
    gzip_last_member_size,
    identify,
    identity_twin,
    is_finished,
    parse_block,
    read_blocks,
)
from synack.ingest.partials import DayRecords, by_day
from synack.ingest.server_identity import IDENTITY_KINDS, SURICATA_EVE_IDENTITY
from synack.ingest.small_batches import Batch, Member, batchable, commit_batch, parse_batch, small_member
from synack.ingest.store import CommitResult, Store
from synack.ingest.store_files import StoreFS
from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_LINE_BYTES, ValueLimits

#: Blocks parsed at once (one per core on the 2-core target machine).
PARSE_AHEAD = 2
#: Parsed chunks that may wait to be written and committed before reading pauses.
COMMIT_AHEAD = 1
#: Chunks whose Parquet files are written at once.
WRITERS = 1
#: Compaction merges run at once after a file (each holds up to MERGE_ROWS
#: aggregate rows; the parse pipeline has drained by then).
MERGERS = 2


@dataclass
class Pools:
    """The threads of an ingest: parsers and file writers (pyarrow and numpy
    release the GIL), and the single committer that records chunks in the
    ledger in order."""

    parser: ThreadPoolExecutor
    writer: ThreadPoolExecutor
    committer: ThreadPoolExecutor


#: Called after each committed chunk with (file, rows added so far in the run).
Progress = Callable[[Path, int], None]


@dataclass
class FileResult:
    """What an ingest did with one file.

    status: "ingested" (rows or quarantined lines added), "unchanged"
    (nothing new), "waiting" (no complete data line yet, or a gzip still
    being written), "error" (message says why).
    """

    path: Path
    status: str
    rows: int = 0
    quarantined: int = 0
    notices: int = 0  # SynAck notices kept (a notice log's rows)
    identities: int = 0  # identity facts kept (an identity log's reduced rows)
    kind: str = ""  # the source's kind, when it was identified
    message: str = ""
    stopped: bool = False  # the run was asked to stop before the end of the file
    source_chunks: int = 0  # chunks of the source committed, by this run and before
    read_state: ReadState = field(default_factory=ReadState)  # where reading stopped


@dataclass
class IngestSummary:
    """The outcome of one ingest run."""

    files: list[FileResult] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    outside: list[Path] = field(default_factory=list)  # links not followed (within_tree)
    days: set[str] = field(default_factory=set)
    seconds: float = 0.0
    newest: dt.datetime | None = None  # the latest record time committed
    upgraded: list[str] = field(default_factory=list)  # days whose partials were built from their records
    merges: int = 0  # compactions of partial aggregates done
    repairs: list[str] = field(default_factory=list)  # damaged aggregates set aside and redone, one line each

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def notices(self) -> int:
        return sum(f.notices for f in self.files)

    @property
    def identities(self) -> int:
        return sum(f.identities for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "error"]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def ingest_paths(
    paths: list[Path],
    store_root: StoreFS | Path,
    *,
    sensor: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    within_tree: bool = False,
) -> IngestSummary:
    """Ingest the conn logs found in `paths` into the store at `store_root`
    (see ingest.store_files) on this machine's threads (ingest.engines runs
    other engines).

    Re-running is a no-op for what was already committed. A file that is
    not a conn log is reported in the summary (status "error") and the run
    goes on. A record more than `clock_skew` seconds ahead of this
    machine's clock (or before 1970), and a line longer than
    `max_line_bytes`, is quarantined. With `within_tree`, a symbolic link
    in a directory walked that leads outside it is not followed. Raises
    SynackError for a missing path or an unusable or locked store.
    """
    with Store.open(store_root) as store:
        return ingest_into(
            store, paths, sensor=sensor, chunk_bytes=chunk_bytes, progress=progress, clock_skew=clock_skew,
            max_line_bytes=max_line_bytes, within_tree=within_tree,
        )  # fmt: skip


#: What stands for standard input among the paths to ingest.
STDIN = Path("-")


def ingest_stdin(stream: BinaryIO, store_root: StoreFS | Path, *, sensor: str | None = None,
                 clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> IngestSummary:  # fmt: skip
    """Ingest a log piped on standard input (plain or gzip, any format a file may have).

    It is spooled whole into a hidden file in the store's directory (the
    ledger's, for a store on object storage), ingested
    as a file, and removed. Its content is its identity, so piping the same
    log again adds nothing (and a longer copy of it adds only the rest). The
    input is taken as complete: a last line without its newline is ended,
    and set aside (quarantined) when it does not parse. The summary names
    the input "-". Raises SynackError for an unusable store.
    """
    with Store.open(store_root) as store:
        folder = Path(store.root) if store.files.local else store.files.ledger.parent
        spool = folder / f".stdin-{os.getpid()}.log"
        try:
            _spool(stream, spool)
            summary = ingest_into(store, [spool], sensor=sensor, clock_skew=clock_skew, max_line_bytes=max_line_bytes)
        except OSError as err:
            raise SynackError(f"cannot spool standard input into {folder}: {err.strerror}") from None
        finally:
            spool.unlink(missing_ok=True)
    for result in summary.files:
        result.path = STDIN
        result.message = result.message.replace(str(spool), "-")
    return summary


def _spool(stream: BinaryIO, spool: Path) -> None:
    """Copy `stream` to `spool` uncompressed (gzip is recognized by its magic
    bytes; a truncated one gives what it holds) and ending in a newline, so
    the same log piped plain or gzipped, cut or not, is one source."""
    head = stream.read(2)
    source: BinaryIO = stream
    if head == b"\x1f\x8b":
        source = gzip.GzipFile(fileobj=_Prefixed(head, stream), mode="rb")  # type: ignore[assignment]
        head = b""
    last = head[-1:] or b"\n"
    with open(open_new(spool, PRIVATE), "wb") as out:  # raw lines from the network
        out.write(head)
        try:
            while block := source.read(8 << 20):
                out.write(block)
                last = block[-1:]
        except (EOFError, gzip.BadGzipFile, zlib.error):
            pass  # taken as complete: what could be read
        if last != b"\n":
            out.write(b"\n")


class _Prefixed(io.RawIOBase):
    """`stream` with `prefix` (bytes already read from it) put back in front."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix, self._stream = prefix, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n], self._prefix = self._prefix[:n], self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def ingest_into(
    store: Store,
    paths: list[Path],
    *,
    sensor: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    within_tree: bool = False,
) -> IngestSummary:
    """Ingest the conn logs found in `paths` into an open store (see ingest_paths).

    A file whose path, size and modification time the ledger has already
    seen is skipped without being read. `stop` is asked between chunks: when
    it returns True the run commits what it parsed and returns early.
    """
    started = time.perf_counter()
    repairs_before = len(store.repairs)
    found = find_conn_logs(paths, stop, within_tree=within_tree)
    summary = IngestSummary(skipped=found.skipped, outside=found.outside)
    settings = Settings(clock_skew, max_line_bytes)
    # A store written before partial aggregates existed is upgraded first.
    summary.upgraded = store.rebuild_aggregates(store.days_without_partials(), stop)
    with (
        ThreadPoolExecutor(PARSE_AHEAD, thread_name_prefix="parse") as parser,
        ThreadPoolExecutor(WRITERS, thread_name_prefix="write") as writer,
        ThreadPoolExecutor(1, thread_name_prefix="commit") as committer,
        ThreadPoolExecutor(MERGERS, thread_name_prefix="merge") as merger,
    ):
        pools = Pools(parser, writer, committer)
        compacted = time.perf_counter()
        merges = threaded_merges(store.files, merger, MERGERS)
        batch = Batch(chunk_bytes)

        def alone(path: Path) -> FileResult:
            return ingest_file(
                store, path, pools, sensor=sensor, chunk_bytes=chunk_bytes, progress=progress, summary=summary,
                stop=stop, settings=settings,
            )  # fmt: skip

        def flush() -> None:
            summary.files.extend(_commit_small(store, batch.take(), sensor, settings.limits(), summary, progress,
                                               alone))  # fmt: skip

        for path in found.sources:
            if stop is not None and stop():
                break
            offered = _offer(store, path, settings.limits(), chunk_bytes)
            if isinstance(offered, FileResult):
                summary.files.append(offered)
                continue
            if isinstance(offered, Member) and not batch.clashes(offered):
                batch.add(offered)
                if batch.full:
                    flush()
                continue
            flush()  # what the batch read is committed before this log is read on its own
            result = alone(path)
            summary.files.append(result)
            if result.rows and time.perf_counter() - compacted >= COMPACT_EVERY_SECONDS:
                summary.merges += store.compact_days(summary.days, stop, merges)
                compacted = time.perf_counter()
        flush()
        if summary.days:
            summary.merges += store.compact_days(summary.days, stop, merges)
            summary.merges += store.roll_up_months(stop)
        if summary.identities:
            summary.merges += store.compact_identity()
    summary.repairs = store.repairs[repairs_before:]
    summary.seconds = time.perf_counter() - started
    return summary


def _offer(store: Store, path: Path, limits: ValueLimits, chunk_bytes: int) -> FileResult | Member | None:
    """What a small log offers a batch (ingest.small_batches): a FileResult
    when it has nothing to read, a Member read whole, None when it is to
    be read on its own (a large, live or unusual log: that read reports it)."""
    if not batchable(path) or is_eve_log_name(path.name):
        return None
    opened = open_source(store, path)
    if isinstance(opened, FileResult):
        return None if has_twin(path, opened.kind) else opened
    source, stat = opened
    try:
        member = small_member(store, source, stat, limits.max_line_bytes, chunk_bytes)
    except FileNotFoundError:
        return FileResult(path, "waiting", message=MOVED_AWAY, kind=source.kind)
    except (NotAZeekLog, NotAConnLog, OSError):
        return None
    if member is None and not path.exists():
        return FileResult(path, "waiting", message=MOVED_AWAY, kind=source.kind)  # rotated away meanwhile
    return member


def _commit_small(store: Store, members: list[Member], sensor: str | None, limits: ValueLimits,
                  summary: IngestSummary, progress: Progress | None,
                  alone: Callable[[Path], FileResult]) -> list[FileResult]:  # fmt: skip
    """Commit a batch of small logs; the result of each. A batch that sets
    a line aside is read log by log (`alone`), as is a single log."""
    if len(members) < 2 or (parsed := parse_batch(members, sensor, limits)) is None:
        return [alone(m.source.path) for m in members]
    done = commit_batch(store, members, parsed)
    summary.days.update(done.days)
    if done.newest is not None and (summary.newest is None or done.newest > summary.newest):
        summary.newest = done.newest
    results = []
    for member, rows in zip(members, parsed.rows):
        results.append(FileResult(member.source.path, "ingested" if rows else "unchanged", rows=rows,
                                  kind=member.source.kind, source_chunks=1))  # fmt: skip
        if progress is not None:
            progress(member.source.path, summary.rows + sum(r.rows for r in results))
    return results


@dataclass(frozen=True)
class Settings:
    """What a run accepts (its options): how far ahead of this clock a record
    may lie, the longest line read as a record."""

    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def limits(self) -> ValueLimits:
        """The limits of a file read now (its "now" taken now: a long run's last file is judged by its own)."""
        return ValueLimits(self.clock_skew, max_line_bytes=self.max_line_bytes)


#: Between files, a day's partials are compacted at most this often (and
#: once after the last file): many small files (hourly archives, a backfill)
#: do not plan a merge each, while a long run keeps its partials few.
COMPACT_EVERY_SECONDS = 5.0


def ingest_file(
    store: Store,
    path: Path,
    pools: Pools,
    *,
    sensor: str | None,
    chunk_bytes: int,
    progress: Progress | None,
    summary: IngestSummary,
    stop: Callable[[], bool] | None = None,
    settings: Settings | None = None,
) -> FileResult:
    """Ingest what is new in one file (and, for a Suricata EVE file, in its
    identity events: ingest.suricata_identity); return what was done."""
    settings = settings or Settings()
    result = _ingest_one(store, path, pools, sensor, chunk_bytes, progress, summary, stop, settings, twin=False)
    if not has_twin(path, result.kind) or (stop is not None and stop()):
        return result
    twin = _ingest_one(store, path, pools, sensor, chunk_bytes, progress, summary, stop, settings, twin=True)
    return with_twin(result, twin)


def has_twin(path: Path, kind: str) -> bool:
    """Whether a file whose first source was of `kind` ("" when it was not
    identified: unchanged) may have a twin source (an EVE file's identity events)."""
    return kind == SURICATA_EVE or (not kind and is_eve_log_name(path.name))


def with_twin(result: FileResult, twin: FileResult) -> FileResult:
    """A file's result with what its twin source added (identity facts, quarantined lines, an error)."""
    result.identities += twin.identities
    result.quarantined += twin.quarantined
    if twin.status == "ingested" and result.status in ("unchanged", "waiting"):
        result.status = "ingested"
    if twin.status == "error" and result.status != "error":
        result.status, result.message = "error", twin.message
    return result


def _ingest_one(store: Store, path: Path, pools: Pools, sensor: str | None, chunk_bytes: int,
                progress: Progress | None, summary: IngestSummary, stop: Callable[[], bool] | None,
                settings: Settings, *, twin: bool) -> FileResult:  # fmt: skip
    opened = open_source(store, path, twin=twin)
    if isinstance(opened, FileResult):
        return opened
    source, stat = opened
    try:
        limits = settings.limits()
        result = _ingest_source(store, source, pools, sensor, chunk_bytes, progress, summary, stop, limits)
    except (NotAZeekLog, NotAConnLog, ClockBehind) as err:  # what was committed before stays
        return FileResult(path, "error", message=str(err), kind=source.kind)
    except FileNotFoundError:
        return FileResult(path, "waiting", message=MOVED_AWAY, kind=source.kind)
    except MemoryError:
        return _set_aside_for_memory(store, source, stat)
    return finish_source(store, source, stat, result)


def _set_aside_for_memory(store: Store, source: LogSource, stat: os.stat_result) -> FileResult:
    """A file whose reading ran out of memory (what it committed before
    stays): recorded in the quarantine and not tried again until it
    changes, so the files after it are read and no run fails the same way."""
    why = ("ran out of memory reading it (a decompression bomb, or a memory limit too low for its chunks?); set "
           "aside until it changes")  # fmt: skip
    store.quarantine_file(source.path, why)
    store.remember_file(source.path, stat.st_size, stat.st_mtime_ns, source.source_id,
                        twin=source.kind == SURICATA_EVE_IDENTITY)  # fmt: skip
    return FileResult(source.path, "error", message=f"{source.path}: {why}", kind=source.kind)


#: Rotated away between listing and reading: it is read under its new name.
MOVED_AWAY = "moved away while being read (rotated?)"


def open_source(store: Store, path: Path, twin: bool = False) -> tuple[LogSource, os.stat_result] | FileResult:
    """The source `path` holds (with `twin`, its second source: an EVE file's
    identity events) and its stat, or the FileResult of a file with nothing
    to read (unchanged, already complete, not a log, still empty, no twin)."""
    try:
        stat = path.stat()
    except OSError as err:
        return FileResult(path, "error", message=f"{path}: {err.strerror}")
    if store.file_unchanged(path, stat.st_size, stat.st_mtime_ns, twin):
        return FileResult(path, "unchanged")
    try:
        source = identify(path)
    except NotGzip as err:
        if not twin:
            store.quarantine_file(path, str(err))
        return FileResult(path, "error", message=str(err))
    except (NotAZeekLog, NotAConnLog) as err:
        return FileResult(path, "error", message=str(err))
    except OSError as err:
        return FileResult(path, "error", message=f"{path}: {err.strerror}")
    if source is None:
        return FileResult(path, "waiting", message="no complete data line yet")
    if twin:
        second = identity_twin(source)
        if second is None:
            return FileResult(path, "unchanged")
        source = second
    source, state = resumed(store, source)
    if state is not None and state.complete and not _may_hold_more(source, stat, state):
        store.remember_file(path, stat.st_size, stat.st_mtime_ns, source.source_id, twin)
        return FileResult(path, "unchanged", kind=source.kind)
    return source, stat


def _may_hold_more(source: LogSource, stat: os.stat_result, state: SourceState) -> bool:
    """Whether a source read to its end may hold more now: a plain file grown
    past the committed offset, or a gzip archive whose last member is not
    what was read (a member appended: `gzip -c more >> day.log.gz`). A
    rotated archive of a live log read to its `#close` is not read again."""
    if not source.compressed:
        return stat.st_size > state.committed_bytes
    return gzip_last_member_size(source.path)[0] != state.committed_bytes % (1 << 32)


#: Derived sources followed at most for one stream (each is a different concatenation starting like the last).
_DERIVED_AT_MOST = 64


def resumed(store: Store, source: LogSource) -> tuple[LogSource, SourceState | None]:
    """The source to read `source`'s stream as, and its ledger state: itself,
    or, for an ASCII stream that holds another header block where the
    ledger's row of it had its last one, or a block not wholly read before
    it (a different concatenation that starts with the same log), the
    source derived from it (ingest.log_blocks.derived_id), read from its
    start with the blocks already read dropped. A complete or growing copy
    of what was read resumes at the committed offset."""
    for _ in range(_DERIVED_AT_MOST):
        state = store.source_state(source.source_id)
        if state is None or not state.tail_start or not state.tail_block or source.kind not in CLOSING_KINDS:
            return source, state  # a stream of one block so far (its first is its identity), or nothing to check
        found = block_at(source, state.tail_start)
        if found == state.tail_block and _read_before(store, source, state.tail_start):
            return source, state
        source = replace(source, source_id=derived_id(source.source_id, found))
    return source, store.source_state(source.source_id)


def _read_before(store: Store, source: LogSource, tail_start: int) -> bool:
    """Whether every header block that begins before `tail_start` in
    `source` was read to its end: else the stream is not the one read
    before, although it starts and ends its read part like it (archives of
    the same lengths in another order), and resuming would skip a block."""
    before = blocks_before(source, tail_start)
    known = store.known_blocks()
    return before is not None and all(known.get(block, (0, False))[1] for block in before)


def count_commit(done: CommitResult, result: FileResult, summary: IngestSummary, progress: Progress | None) -> None:
    """Add one committed chunk to its file's result and to the run's summary; report progress."""
    result.rows += done.rows
    result.notices += done.notices
    result.identities += done.identities
    result.quarantined += done.quarantined
    summary.days.update(done.days)
    if done.newest is not None and (summary.newest is None or done.newest > summary.newest):
        summary.newest = done.newest
    if progress is not None:
        progress(result.path, summary.rows + result.rows)


def finish_source(store: Store, source: LogSource, stat: os.stat_result, result: FileResult) -> FileResult:
    """After a source's new chunks are committed: mark a finished gzip
    complete, merge a complete source's small files, remember a file read to
    its end; return `result` with its final status and message."""
    read_state = result.read_state
    finished = read_state.at_eof and not read_state.partial_line and not result.stopped
    # A truncated archive nobody has written to for a while is damaged, not being written: what it held
    # before the damage is read, and it is not tried again until it changes.
    damaged = read_state.truncated_gzip and not result.stopped and is_finished(source.path)
    if source.compressed and (finished or damaged) and result.source_chunks > 0:
        store.mark_complete(source.source_id)
    final = store.source_state(source.source_id)
    if final is not None and final.complete and final.chunks > 1:
        store.compact_source(source.source_id)
    if result.rows or result.quarantined or result.notices or result.identities:
        result.status = "ingested"
    if damaged:
        result.status = "ingested" if result.rows or result.quarantined else "unchanged"
        read = final.next_line - 1 if final is not None else 0
        result.message = (f"damaged gzip archive: its stream ends early; its {read:,} lines before the damage are "
                          "read, the rest is lost")  # fmt: skip
    elif read_state.truncated_gzip:
        result.status = "waiting" if not result.rows else result.status
        result.message = "gzip stream ends early (still being written?); the rest is read on a later run"
    elif read_state.partial_line:
        result.message = "last line is incomplete; it is read once it is finished"
    if result.status in ("ingested", "unchanged") and not result.stopped:
        # Read to the end as it was when stat'ed: skip it until it changes.
        store.remember_file(source.path, stat.st_size, stat.st_mtime_ns, source.source_id,
                            twin=source.kind == SURICATA_EVE_IDENTITY)  # fmt: skip
    result.kind = source.kind
    return result


def write_parsed(store: StoreFS, source: LogSource, chunk_no: int, chunk: Chunk, days: list[DayRecords]) -> ChunkFiles:
    """Write a parsed chunk's files under temporary names (step 1 of its commit; any thread or machine)."""
    notices = chunk.table if source.kind in NOTICE_KINDS else None
    identities = chunk.table if source.kind in IDENTITY_KINDS else None
    span = ChunkSpan(chunk_no, chunk.byte_start, chunk.byte_end, chunk.line_start, chunk.line_end,
                     sum(len(d.records) for d in days), len(chunk.quarantined))  # fmt: skip
    row = ChunkRow(source.source_id, source.kind, str(source.path), span, chunk.header, finishes(source, chunk),
                   chunk.blocks, chunk.tail)  # fmt: skip
    return write_chunk_files(store, source.source_id, source.path, chunk_no, days, chunk.quarantined, notices,
                             identities, provenance.of_chunk(row))  # fmt: skip


def finishes(source: LogSource, span: Span) -> bool:
    """Whether `span` finishes its source: a closed ASCII log gets no more lines."""
    return span.closed and source.kind in CLOSING_KINDS


def commit_parsed(store: Store, source: LogSource, files: ChunkFiles, chunk_no: int, span: Span) -> CommitResult:
    """Commit a chunk's written files, covering `span` of the source, in the
    ledger and publish them (steps 2 and 3; in chunk order, one at a time)."""
    return store.commit_chunk_files(
        files, source.source_id, source.kind, source.path, chunk_no, byte_start=span.byte_start,
        byte_end=span.byte_end, line_start=span.line_start, line_end=span.line_end, header=span.header,
        complete=finishes(source, span), blocks=span.blocks, tail=span.tail,
    )  # fmt: skip


def parse_and_aggregate(
    source: LogSource, raw: RawBlock, sensor: str | None, limits: ValueLimits | None
) -> tuple[Chunk, list[DayRecords]]:
    """Parse a block, then split its records by day and aggregate them: all
    the CPU work of a chunk but its writes, for the parse threads."""
    chunk = parse_block(source, raw, sensor, limits)
    return chunk, ([] if source.kind in NOTICE_KINDS or source.kind in IDENTITY_KINDS else by_day(chunk.table))


#: A chunk with more than this share of its lines "in the future" stops its
#: file: the ingest host's clock is wrong, not the log (quarantined, those
#: lines could never come back once their offsets were committed).
FUTURE_SHARE = 0.5


def _check_clock(source: LogSource, chunk: Chunk, limits: ValueLimits | None) -> None:
    """Raise ClockBehind when most lines of `chunk` are "in the future" (FUTURE_SHARE)."""
    lines = chunk.line_end - chunk.line_start
    future = sum(1 for q in chunk.quarantined if "in the future" in q.reason)
    if lines and future > FUTURE_SHARE * lines:
        skew = (limits.clock_skew_seconds if limits is not None else DEFAULT_CLOCK_SKEW_SECONDS) / 86400
        raise ClockBehind(
            f"{source.path}: {future:,} of {lines:,} lines from line {chunk.line_start:,} are more than {skew:g} "
            "days ahead of this host's clock: is its clock behind this log? Nothing of it from that line on is "
            "committed; fix the clock and ingest again (or allow more with --clock-skew)"
        )


def _ingest_source(
    store: Store,
    source: LogSource,
    pools: Pools,
    sensor: str | None,
    chunk_bytes: int,
    progress: Progress | None,
    summary: IngestSummary,
    stop: Callable[[], bool] | None = None,
    limits: ValueLimits | None = None,
) -> FileResult:
    state = store.source_state(source.source_id)
    read_state = ReadState()
    result = FileResult(source.path, "unchanged")
    chunk_no = state.chunks if state else 0
    parsing: deque[Future[tuple[Chunk, list[DayRecords]]]] = deque()
    committing: deque[Future[CommitResult]] = deque()

    def settle(fut: Future[CommitResult] | None) -> None:
        if fut is not None:
            count_commit(fut.result(), result, summary, progress)

    def record(files: Future[ChunkFiles], chunk: Chunk, number: int) -> CommitResult:
        return commit_parsed(store, source, files.result(), number, chunk)

    def commit(parsed: tuple[Chunk, list[DayRecords]]) -> None:
        nonlocal chunk_no
        # Files are written on the writer threads, several chunks at once;
        # the ledger commits happen on the single committer thread, in order.
        chunk, days = parsed
        _check_clock(source, chunk, limits)
        files = pools.writer.submit(write_parsed, store.files, source, chunk_no, chunk, days)
        committing.append(pools.committer.submit(record, files, chunk, chunk_no))
        chunk_no += 1
        # Wait only when COMMIT_AHEAD chunks are queued for the writer.
        while committing and (len(committing) > COMMIT_AHEAD or committing[0].done()):
            settle(committing.popleft())

    try:
        blocks = read_blocks(
            source,
            byte_start=state.committed_bytes if state else 0,
            line_start=state.next_line if state else 1,
            header=state.header if state else b"",
            chunk_bytes=chunk_bytes,
            state=read_state,
            known=store.known_blocks(),
            tail=(state.tail_block, state.tail_start) if state else ("", 0),
            max_line=limits.max_line_bytes if limits is not None else DEFAULT_MAX_LINE_BYTES,
        )
        # Parse up to PARSE_AHEAD blocks at once while earlier chunks are
        # written: commits stay in order, memory stays bounded.
        for raw in blocks:
            parsing.append(pools.parser.submit(parse_and_aggregate, source, raw, sensor, limits))
            if len(parsing) > PARSE_AHEAD:
                commit(parsing.popleft().result())
            if stop is not None and stop():
                result.stopped = True
                break
        while parsing:
            commit(parsing.popleft().result())
    finally:
        for fut in parsing:
            fut.cancel()
        while committing:
            settle(committing.popleft())
    result.read_state = read_state
    result.source_chunks = chunk_no
    return result
