"""The Dask engine: the same ingest, with sources parsed on a Dask cluster.

The only module that imports dask. The work is a map over source files
and a reduce per day, never a shuffle of rows:

* **map** (a task per source, on any worker): read the source from the
  offset the ledger committed, parse, normalize, split by day and
  aggregate each chunk, and write its records, partial aggregates,
  quarantined lines and notices under temporary names
  (`ingest.chunk_files.write_chunk_files`: no ledger, no lock). The task returns what
  it wrote: a few hundred bytes per chunk, never rows.
* **commit** (the driver, the single writer): as each source's task
  finishes, its chunks are committed in their order through the ledger
  (`Store.commit_chunk_files`), exactly as the local engine commits them,
  and published. A source's offset moves only by a commit.
* **reduce**: each touched day's partials are compacted, a task per
  merge on the workers (`merge_partials`: read the group, merge, write the
  merged partial under a temporary name), swapped in by the driver in one
  ledger transaction each; months are rolled up by the driver.

A worker that dies mid-task leaves at most temporary files; Dask runs the
task again elsewhere and it writes the same names again (they are fixed by
source and chunk). Nothing a task wrote counts until the driver commits
it, so nothing is lost or counted twice; temporaries of a task abandoned
for good are removed by the next open of the store (`Store.recover`).
Chunks are cut as the local engine cuts them, so both engines write the
same records and partials, and every query answers the same.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synack.ingest.chunk_files import ChunkFiles, remove_temporaries
from synack.ingest.compaction import DayJobs, DayPartials, DayRunner, MergeRunner, build_day_partials
from synack.ingest.conn_ingest import (
    MOVED_AWAY,
    FileResult,
    IngestSummary,
    Progress,
    Settings,
    commit_parsed,
    count_commit,
    finish_source,
    has_twin,
    open_source,
    parse_and_aggregate,
    write_parsed,
)
from synack.ingest.errors import NotAConnLog, NotAZeekLog, SynackError
from synack.ingest.log_blocks import KnownBlocks
from synack.ingest.log_files import find_conn_logs
from synack.ingest.log_source import (
    DEFAULT_CHUNK_BYTES,
    LogSource,
    ReadState,
    Span,
    read_blocks,
)
from synack.ingest.partials import Partial, merge_partials
from synack.ingest.store import Store
from synack.ingest.store_files import StoreFS
from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_LINE_BYTES

#: What to install when the engine is asked for without Dask.
EXTRA = "pip install 'synack[dask]'"


def require_dask() -> None:
    """Raise SynackError, naming the extra to install, when Dask's distributed scheduler is missing."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise SynackError(f"the dask engine needs Dask: {EXTRA}") from None


@dataclass
class PreparedSource:
    """What a map task wrote for one source (temporary files, not committed)."""

    chunks: list[tuple[ChunkFiles, Span]] = field(default_factory=list)
    read_state: ReadState = field(default_factory=ReadState)
    error: str = ""  # the source stopped being readable as a log (what was read before stays)
    moved: bool = False  # rotated away while being read


def prepare_source(
    store: StoreFS, source: LogSource, start: tuple[int, int, bytes, int], sensor: str | None, chunk_bytes: int,
    settings: Settings, known: KnownBlocks | None = None, tail: tuple[str, int] = ("", 0),
) -> PreparedSource:  # fmt: skip
    """The map task: parse `source` from `start` (byte offset, line, header,
    next chunk number, as the ledger has them) and write its chunks' files
    under temporary names into `store`. Runs on a worker."""
    _fault_once()
    byte_start, line_start, header, chunk_no = start
    limits = settings.limits()
    out = PreparedSource()
    try:
        for raw in read_blocks(source, byte_start=byte_start, line_start=line_start, header=header,
                               chunk_bytes=chunk_bytes, state=out.read_state, known=known, tail=tail,
                               max_line=limits.max_line_bytes):  # fmt: skip
            chunk, days = parse_and_aggregate(source, raw, sensor, limits)
            files = write_parsed(store, source, chunk_no, chunk, days)
            # The span without the chunk's rows: what the driver commits.
            span = Span(chunk.byte_start, chunk.byte_end, chunk.line_start, chunk.line_end, chunk.header, chunk.closed,
                        chunk.blocks, chunk.tail)  # fmt: skip
            out.chunks.append((files, span))
            chunk_no += 1
    except (NotAZeekLog, NotAConnLog) as err:
        out.error = str(err)
    except FileNotFoundError:
        out.moved = True
    return out


def _fault_once() -> None:
    """For the crash test: SIGKILL this worker the first time a task runs
    while SYNACK_DASK_FAULT names a file that does not exist yet (it is
    created first, so the retried task runs to its end)."""
    marker = os.environ.get("SYNACK_DASK_FAULT")
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a local cluster of
    `workers` processes (one thread each) started and stopped here. Raises
    SynackError when Dask is missing or the scheduler cannot be reached."""
    require_dask()
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError) as err:
            raise SynackError(f"cannot reach the Dask scheduler {scheduler}: {err}") from None
        with client:
            yield client
        return
    count = workers or os.cpu_count() or 1
    # Everything on loopback: the dashboard shows the cluster's status and logs to whoever reaches it.
    with LocalCluster(n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:  # fmt: skip
        with Client(cluster) as client:
            yield client


def ingest_dask(
    store: Store,
    paths: list[Path],
    client: Any,
    *,
    sensor: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    within_tree: bool = False,
) -> IngestSummary:
    """Ingest the logs found in `paths` into the open `store`, parsing on the
    Dask cluster of `client` (see the module); the same summary, and the same
    store, as conn_ingest.ingest_into. `stop` is asked between commits."""
    started = time.perf_counter()
    found = find_conn_logs(paths, within_tree=within_tree)
    settings = Settings(clock_skew, max_line_bytes)
    summary = IngestSummary(skipped=found.skipped, outside=found.outside)
    files = store.files.resolved()
    merges = merge_runner(client, files)
    summary.upgraded = store.rebuild_aggregates(store.days_without_partials(), stop, day_runner(client, files), merges)
    waiting = [(path, False) for path in found.sources]
    rounds = 0
    while waiting and not (stop is not None and stop()):
        rounds += 1
        # One task per source a round: a log seen under two names (the live
        # conn.log and its archive) is read by a later round, from the offset
        # the first one committed.
        this_round, waiting = waiting, []
        tasks: dict[Any, tuple[LogSource, os.stat_result, int]] = {}
        sources: set[str] = set()
        known: dict[str, tuple[int, bool]] | None = None
        for path, twin in this_round:
            opened = open_source(store, path, twin=twin)
            if isinstance(opened, FileResult):
                if not twin or opened.status != "unchanged":
                    summary.files.append(opened)
                if not twin and has_twin(path, opened.kind):
                    waiting.append((path, True))  # an EVE file's identity events: the next round
                continue
            source, stat = opened
            if source.source_id in sources:
                waiting.append((path, twin))
                continue
            if not twin and has_twin(path, source.kind):
                waiting.append((path, True))
            sources.add(source.source_id)
            state = store.source_state(source.source_id)
            start = (state.committed_bytes, state.next_line, state.header, state.chunks) if state else (0, 1, b"", 0)
            tail = (state.tail_block, state.tail_start) if state else ("", 0)
            known = known if known is not None else dict(store.known_blocks())  # as the round's tasks see it
            key = f"synack-source-{source.source_id}-{start[3]}-{rounds}"  # a source read again is a new task
            future = client.submit(prepare_source, files, source, start, sensor, chunk_bytes, settings, known,
                                   tail, pure=False, retries=2, key=key)  # fmt: skip
            tasks[future] = (source, stat, start[3])
        for path, twin in _commit_round(store, tasks, summary, progress, stop, merges, known or {}):
            waiting.append((path, twin))
    if summary.days:
        summary.merges += store.roll_up_months(stop)
    summary.repairs = list(store.repairs)
    summary.seconds = time.perf_counter() - started
    return summary


def _commit_round(store: Store, tasks: dict[Any, tuple[LogSource, os.stat_result, int]], summary: IngestSummary,
                  progress: Progress | None, stop: Callable[[], bool] | None, merges: MergeRunner,
                  known: KnownBlocks) -> list[tuple[Path, bool]]:  # fmt: skip
    """Commit each source of a round as its task finishes (the driver); cancel
    the rest on `stop`. Return the files to read again in the next round: a
    source whose task read a header block that another source of the round
    committed meanwhile (a concatenation and its archives), from its first
    chunk that did (the blocks `known` when the round began)."""
    from dask.distributed import as_completed

    again: list[tuple[Path, bool]] = []
    for future in as_completed(list(tasks)):
        source, stat, first_chunk = tasks[future]
        if stop is not None and stop():
            summary.files.append(FileResult(source.path, "unchanged", stopped=True))
            future.cancel()
            continue
        prepared: PreparedSource = future.result()
        current = store.known_blocks()
        moved = {b for b in {m.block_id for _, span in prepared.chunks for m in span.blocks}
                 if current.get(b) != known.get(b)}  # fmt: skip
        if moved:
            cut = next(i for i, (_, span) in enumerate(prepared.chunks) if {m.block_id for m in span.blocks} & moved)
            for files, _ in prepared.chunks[cut:]:
                remove_temporaries(store.files, [f for f, *_ in files.planned]
                                   + [f for p in files.partials for f in p.paths(store.root)])  # fmt: skip
            prepared.chunks = prepared.chunks[:cut]
            again.append((source.path, False))  # header blocks are an ASCII log's: never an EVE twin
        result = _commit(store, source, prepared, first_chunk, summary, progress)
        if moved:
            continue
        if prepared.error:
            summary.files.append(FileResult(source.path, "error", rows=result.rows, message=prepared.error))
        elif prepared.moved:
            summary.files.append(FileResult(source.path, "waiting", rows=result.rows, message=MOVED_AWAY))
        else:
            summary.files.append(finish_source(store, source, stat, result))
        if result.rows:
            summary.merges += store.compact_days(summary.days, stop, merges)
    return again


def _commit(store: Store, source: LogSource, prepared: PreparedSource, first_chunk: int, summary: IngestSummary,
            progress: Progress | None) -> FileResult:  # fmt: skip
    """Commit a prepared source's chunks in order (the driver); return what they added."""
    result = FileResult(source.path, "unchanged", read_state=prepared.read_state)
    number = first_chunk
    for files, span in prepared.chunks:
        count_commit(commit_parsed(store, source, files, number, span), result, summary, progress)
        number += 1
    result.source_chunks = number
    return result


def day_runner(client: Any, store: StoreFS) -> DayRunner:
    """Runs Store.rebuild_aggregates' per-day work as one task per day on the
    cluster of `client`, yielding each day as it is done. `store` as the
    workers see it (StoreFS.resolved)."""
    from dask.distributed import as_completed

    def run(jobs: DayJobs) -> Iterator[DayPartials]:
        futures = [client.submit(build_day_partials, store, day, files, pure=False, retries=2)
                   for day, files in jobs]  # fmt: skip
        for future in as_completed(futures):
            yield future.result()

    return run


def merge_runner(client: Any, store: StoreFS) -> MergeRunner:
    """Runs Store.compact_days' merges as one task per group of partials on
    the cluster of `client`, yielding (group, merged partial) as they finish.
    `store` as the workers see it (StoreFS.resolved)."""
    from dask.distributed import as_completed

    def run(groups: list[list[Partial]]) -> Iterator[tuple[list[Partial], Partial]]:
        futures = {client.submit(merge_partials, store, group, fine=False, pure=False, retries=2): group
                   for group in groups}  # fmt: skip
        for future in as_completed(list(futures)):
            yield futures[future], future.result()

    return run


def rebuild_dask(store_root: StoreFS | Path, client: Any) -> list[str]:
    """`synack rebuild` on the cluster of `client`: every day's partials
    recomputed from its records, a task per day, then merged, a task per
    merge; return the days rebuilt."""
    with Store.open(store_root, create=False) as store:
        files = store.files.resolved()
        return store.rebuild_aggregates(runner=day_runner(client, files), merge_runner=merge_runner(client, files))
