"""Compaction: merging what a store has committed into fewer, larger files.

* `compact_source`: a finished source's small per-pass record files and
  fine partials, merged per day into one of each per MERGE_ROWS run;
* `compact_days`: tiered merges of each day's coarse partials
  (planned in ingest.partials);
* `compact_small_days`: a settled day's many small record files (and
  their fine partials) merged into one, whatever their sources;
* `roll_up_months`: settled days merged into one roll-up per month
  (planned in ingest.rollups), then into their year's first and last
  sightings (ingest.sightings);
* `rebuild_aggregates`: a day's partials recomputed from its records,
  after `rederive_outcomes` has brought each record's outcome up to the
  current handshake rules (a store written by an older synack).

Each merge is written under temporary names, swapped in by one ledger
transaction (the files it replaces retired, Store.retire), then published;
a crash anywhere leaves the old or the new set, which recovery finishes.
The work of a merge may run on other threads or machines (the runners);
only the store's writer commits.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TypeVar

import pyarrow as pa

from synack.ingest import fault_points
from synack.ingest.aggregates import RECORD_COLUMNS
from synack.ingest.chunk_files import CONN_DIR, remove_temporaries, write_record_file
from synack.ingest.errors import StoreError
from synack.ingest.handshake import derive_outcome
from synack.ingest.ledger import DaySensor, FileRow
from synack.ingest.partials import (
    KINDS,
    MERGE_ROWS,
    Partial,
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
from synack.ingest.provenance import carried
from synack.ingest.rollups import Rollup, month_of, plan_steps, settled_before, write_rollup
from synack.ingest.sightings import plan_sightings, sightings_before, write_sightings, year_of
from synack.ingest.store import Store
from synack.ingest.store_files import FileDamaged, FileStamp, StoreFS, io_error, tmp_name

#: (day, its record files) for each day to rebuild.
DayJobs = list[tuple[str, list[FileRow]]]
#: What build_day_partials returns: the day, its new partials (temporary files), its sensor counts.
DayPartials = tuple[str, list[Partial], list[DaySensor]]
#: Runs build_day_partials over DayJobs, yielding results as they come.
DayRunner = Callable[[DayJobs], Iterable[DayPartials]]
#: Runs merge_partials (coarse) over groups of partials, yielding (group, merged partial) as they come.
MergeRunner = Callable[[list[list[Partial]]], Iterable[tuple[list[Partial], Partial]]]


def compact_source(store: Store, source_id: str) -> int:
    """Merge each day's small chunk files of a finished source, and their
    fine partials alike; return the record files replaced.

    A live log followed every 30 s leaves one small file per pass; once
    the log is complete, runs of adjacent chunks are merged (each run
    bounded by MERGE_ROWS) into one record file `<source>-c<last>` and
    one fine partial `<source>-f<first>-<last>`, swapped in by one ledger
    transaction. The old files are hidden before the new one is published,
    so a reader listing conn/ never sees a record twice.
    """
    book, files, root = store.ledger, store.files, store.root
    records = book.file_rows(source_id=source_id, records_only=True, pending=False)
    replaced = 0
    for day in sorted({f.day for f in records if f.day is not None}):
        for group in fine_merges(book.partials(day=day, source_id=source_id, fine=True)):
            lo, hi = group[0].chunk_lo, group[-1].chunk_hi
            old = sorted((f for f in records if f.day == day and lo <= f.chunk <= hi), key=lambda f: f.chunk)
            if not old:
                continue
            tables = [files.read_verified(root / f.path, f.stamp, f.rows) for f in old]
            merged = carried(tables, (source_id, hi), pa.concat_tables(tables, promote_options="permissive")
                             .unify_dictionaries().combine_chunks())  # fmt: skip
            del tables
            final = root / CONN_DIR / f"date={day}" / f"{source_id}-c{hi:06d}.parquet"
            stamp = write_record_file(files, merged, tmp_name(final))
            partial = merge_partials(files, group, fine=True)
            row = FileRow(files.rel(final), source_id, hi, day, len(merged), stamp)
            del merged
            _swap_records(store, old, row, group, partial, "compaction-committed")
            replaced += len(old)
    return replaced


def _swap_records(store: Store, old: list[FileRow], row: FileRow, fine: list[Partial], partial: Partial,
                  point: str) -> None:  # fmt: skip
    """Commit the merged record file `row` and fine partial `partial` (both
    written under temporary names) in place of the record files `old` and
    the fine partials `fine`, in one transaction; then publish them."""
    book, root = store.ledger, store.root
    final = root / row.path
    with store.transaction(cleanup=[final, *partial.paths(root)]):
        book.remove_files(f.path for f in old)
        retired = store.retire(root / f.path for f in old if f.path != row.path)
        book.add_files([row])
        retired += store.retire(f for p in book.leave_layer(fine, "fine") for f in p.paths(root))
        book.insert_partials([partial])
    fault_points.reached(point)
    store.hide(retired, keep=[final, *partial.paths(root)])
    store.publish([final])
    store.publish_partials([partial])


#: A settled day with at least this many record files (hourly archives of a
#: quiet sensor, a backfill of many small logs, one file per `watch` pass of
#: a log never rotated) has them merged into one, whatever their sources.
SMALL_DAY_FILES = 8


def compact_small_days(store: Store, stop: Callable[[], bool] | None = None) -> int:
    """Merge the record files of each settled day that has SMALL_DAY_FILES
    or more, holding MERGE_ROWS records or fewer in all, into one file, and
    its fine partials into one; return the days merged.

    The merged file belongs to the day (its source is `day-<date>`, chunk
    0), and so does the merged fine partial (the whole day's time bounds):
    a range that cuts the day re-aggregates that one file's records in the
    range, as it would a source's. A store's file count then follows its
    days, not the number of source files or passes. Each day is one ledger
    transaction, the replaced files retired, so a reader never counts a
    record twice."""
    book, files, root = store.ledger, store.files, store.root
    newest = book.newest_partial_day()
    if newest is None:
        return 0
    done = 0
    for day in book.crowded_days(settled_before(newest), SMALL_DAY_FILES, MERGE_ROWS):
        if stop is not None and stop():
            break
        records = book.file_rows(day=day, records_only=True, pending=False)
        fine = book.partials(day=day, fine=True)
        source = f"day-{day}"
        digest = hashlib.sha256("\n".join(sorted(f.path for f in records)).encode()).hexdigest()[:12]
        final = root / CONN_DIR / f"date={day}" / f"{source}-{digest}.parquet"
        tables = [files.read_verified(root / f.path, f.stamp, f.rows) for f in records]
        merged = carried(tables, (source, 0), pa.concat_tables(tables, promote_options="permissive")
                         .unify_dictionaries().combine_chunks())  # fmt: skip
        del tables
        stamp = write_record_file(files, merged, tmp_name(final))
        row = FileRow(files.rel(final), source, 0, day, len(merged), stamp)
        del merged
        name = f"{source}-f{digest}"
        written = {kind: merge_kind(files, fine, kind, name, fine=True) for kind in KINDS}
        partial = replace(merged_partial(fine, name, written, fine=True), source_id=source, chunk_lo=0, chunk_hi=0)
        _swap_records(store, records, row, fine, partial, "day-compaction-committed")
        done += 1
    return done


def compact_days(store: Store, days: Iterable[str], stop: Callable[[], bool] | None = None,
                 runner: MergeRunner | None = None) -> int:  # fmt: skip
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
    book, root = store.ledger, store.root
    newest = book.newest_partial_day()
    run = runner or (lambda groups: ((g, merge_partials(store.files, g, fine=False)) for g in groups))
    done = 0
    todo = sorted(days)
    while todo:
        plans: list[list[Partial]] = []
        for day in todo:
            coarse = book.partials(day=day, coarse=True)
            plans.extend(coarse_merges(coarse, settled=newest is not None and day < newest))
        if not plans:
            break
        for group, merged in run(plans):
            if stop is not None and stop():
                remove_temporaries(store.files, merged.paths(root))
                return done
            with store.transaction(cleanup=merged.paths(root)):
                gone = book.leave_layer(group, "coarse", merged.coarse)
                retired = store.retire(f for p in gone for f in p.paths(root))
                book.insert_partials([merged])
            fault_points.reached("merge-committed")
            store.hide(retired, keep=merged.paths(root))
            store.publish_partials([merged])
            done += 1
        todo = sorted({group[0].day for group in plans})
    return done


def roll_up_months(store: Store, stop: Callable[[], bool] | None = None) -> int:
    """Merge the small record files of settled days (compact_small_days),
    bring the monthly roll-ups up to the settled days (see ingest.rollups),
    then each year's sightings (ingest.sightings); return the roll-up and
    sightings merges done. Each merge is its own transaction, so `stop` (asked
    between merges) ends it promptly."""
    book = store.ledger
    newest = book.newest_partial_day()
    if newest is None:
        return 0
    compact_small_days(store, stop)
    done = _run_steps(store, plan_steps, write_rollup, settled_before(newest), stop)
    if stop is not None and stop():
        return done
    return done + _run_steps(store, plan_sightings, write_sightings, sightings_before(newest), stop)


Step = TypeVar("Step")


#: plan_steps or plan_sightings: (current roll-ups, generations, coarse partials by day, settled) -> steps.
Planner = Callable[[dict[str, Rollup], dict[str, int], dict[str, list[Partial]], str], list[Step]]


def _run_steps(store: Store, plan: Planner[Step], write: Callable[[StoreFS, Step], Rollup], settled: str,
               stop: Callable[[], bool] | None) -> int:  # fmt: skip
    """Plan and write roll-up steps (of months or years) until none is left
    for the days before `settled`; return how many were committed."""
    book = store.ledger
    done = 0
    while True:
        current = book.rollups()
        coarse: dict[str, list[Partial]] = {}
        for p in book.partials(coarse=True, before=settled):
            coarse.setdefault(p.day, []).append(p)
        steps = plan(current, book.generations(before=settled), coarse, settled)
        if not steps:
            return done
        for step in steps:
            if stop is not None and stop():
                return done
            _swap_rollup(store, current, write(store.files, step))
            done += 1


def _swap_rollup(store: Store, current: dict[str, Rollup], rollup: Rollup) -> None:
    """Commit a new roll-up (or year's sightings) in place of the period's current one, then publish it."""
    root = store.root
    old = current.get(rollup.month)
    with store.transaction(cleanup=rollup.paths(root)):
        retired = store.retire(old.paths(root)) if old is not None else []
        store.ledger.put_rollup(rollup)
    fault_points.reached("rollup-committed")
    store.hide(retired, keep=rollup.paths(root))
    store.publish_rollup(rollup)


#: The columns derive_outcome writes into a record.
DERIVED = ("outcome", "server_h", "server_p", "client_h")


def rederive_outcomes(store: Store, days: list[str], stop: Callable[[], bool] | None = None) -> int:
    """Re-derive the outcome (and server and client) of every record of
    `days` from its stored history, conn_state, flags and packets, by the
    current rules (ingest.handshake); rewrite the record files where any
    row changes (same name, one transaction each, as a compaction swaps
    files) and return how many were rewritten. A store written before a
    rule changed (e.g. `unanswered` for a missed SYN-ACK) then says what
    the current synack would say."""
    book, files, root = store.ledger, store.files, store.root
    rewritten = 0
    for day in sorted(days):
        for f in book.file_rows(day=day, pending=False):
            if stop is not None and stop():
                return rewritten
            if not f.path.startswith(f"{CONN_DIR}/"):
                continue
            final = root / f.path
            try:
                records = files.read_verified(final, f.stamp, f.rows)
            except (FileNotFoundError, FileDamaged) as err:
                raise _unreadable(files, f, err) from None
            if not len(records):
                continue
            derived = derive_outcome(records)
            if all(_same(records.column(name), derived[name]) for name in DERIVED if name in records.column_names):
                continue
            for name in DERIVED:
                i = records.schema.get_field_index(name)
                if i >= 0:
                    records = records.set_column(i, name, derived[name].cast(records.schema.field(i).type))
                else:
                    records = records.append_column(name, derived[name])
            stamp = write_record_file(files, records, tmp_name(final))
            row = FileRow(f.path, f.source_id, f.chunk, f.day, len(records), stamp)
            del records
            with store.transaction(cleanup=[final]):
                book.remove_files([f.path])
                book.add_files([row])
            store.publish([final])
            rewritten += 1
    return rewritten


def _unreadable(store: StoreFS, f: FileRow, err: FileNotFoundError | FileDamaged) -> StoreError:
    """The one-line error of a record file that is missing or damaged."""
    what = "is missing" if isinstance(err, FileNotFoundError) else f"is damaged ({err.why})"
    return StoreError(f"record file {f.path} of {store} {what}: run 'synack check' (and --repair)")


def _same(stored: pa.ChunkedArray, derived: pa.Array) -> bool:
    """Whether a stored column holds the derived values (nulls alike), whatever their encodings."""
    plain = stored.type.value_type if pa.types.is_dictionary(stored.type) else stored.type
    left = stored.cast(plain)
    right = derived.cast(plain)
    return bool(left.equals(pa.chunked_array([right])))


def rebuild_aggregates(
    store: Store,
    days: list[str] | None = None,
    stop: Callable[[], bool] | None = None,
    runner: DayRunner | None = None,
    merge_runner: MergeRunner | None = None,
) -> list[str]:
    """Recompute the partials of `days` (default: every day with records;
    never a pruned day) from their records, one record file at a time, and swap each day's set in one
    transaction; then compact them. Return the days rebuilt (a `stop`
    asked between days ends it early; what was done stays done).

    `runner` runs build_day_partials over the days, in any order and on
    any machine that sees the store (the Dask engine's); by default, here,
    one day after the other. Each day is swapped in as its result comes;
    `merge_runner` then runs the compaction's merges (see compact_days).
    """
    book, root = store.ledger, store.root
    if days is None:
        days = book.record_days()
    pruned = set(book.pruned_days())  # no records to rebuild from: their aggregates stay (ingest.retention)
    days = [day for day in days if day not in pruned]
    rederive_outcomes(store, days, stop)
    work = [(day, book.file_rows(day=day, pending=False)) for day in sorted(days)]
    run = runner or (lambda jobs: (build_day_partials(store.files, day, files) for day, files in jobs))
    rebuilt: list[str] = []
    for day, new, sensors in run(work):
        if stop is not None and stop():
            remove_temporaries(store.files, [f for p in new for f in p.paths(root)])
            break
        old = book.partials(day=day, pending=None)
        new_paths = [f for p in new for f in p.paths(root)]
        kept = set(new_paths)
        with store.transaction(cleanup=new_paths):
            book.delete_day_partials(day)
            retired = store.retire(f for p in old for f in p.paths(root) if f not in kept)
            book.insert_partials(new)
            book.replace_day_sensors(day, sensors)
            for period in (month_of(day), year_of(day)):
                for rollup in book.rollups(month=period, pending=None).values():
                    retired += store.retire(rollup.paths(root))
                    book.delete_rollup(period)
        store.hide(retired, keep=new_paths)
        store.publish_partials(new)
        rebuilt.append(day)
    legacy = root / "daily"
    if store.files.exists(legacy) and not book.days_without_partials():
        store.files.remove_tree(legacy)  # the dailies of ledger version 1
    store.compact_days(rebuilt, stop, merge_runner)  # mended: a damaged file met is set aside and redone
    store.roll_up_months(stop)
    return rebuilt


def threaded_merges(store: StoreFS, pool: ThreadPoolExecutor, at_once: int) -> MergeRunner:
    """Runs compact_days' merges on `pool`, `at_once` of them at a
    time, each as two tasks (its servers and its clients files, so two
    threads stay busy to the last merge), yielding them in order. The
    merges of a round are independent: each reads its own partials and
    writes a new one under temporary names. Abandoned early (a stop), it
    starts no more; those under way finish and their files are removed."""

    def run(groups: list[list[Partial]]) -> Iterator[tuple[list[Partial], Partial]]:
        started: deque[tuple[list[Partial], str, dict[str, Future[tuple[int, FileStamp]]]]] = deque()
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
                remove_temporaries(store, [partial_path(store.root, kind, group[0].day, name) for kind in KINDS])

    return run


def build_day_partials(store: StoreFS, day: str, files: list[FileRow]) -> DayPartials:
    """The partials of one day recomputed from its record `files`, one file
    at a time (each verified), written under temporary names (no ledger: a
    worker runs it). Raises StoreError for a record file that is missing or
    damaged, or a store that cannot be written."""
    new: list[Partial] = []
    sensors: list[DaySensor] = []
    try:
        for f in files:
            try:
                records = store.read_verified(store.root / f.path, f.stamp, f.rows, columns=[*RECORD_COLUMNS])
            except (FileNotFoundError, FileDamaged) as err:
                remove_temporaries(store, [p for part in new for p in part.paths(store.root)])
                raise _unreadable(store, f, err) from None
            name = f"{f.source_id}-r{f.chunk:06d}"
            new.append(write_partial(store, name, day, f.source_id, (f.chunk, f.chunk), records))
            sensors.extend(DaySensor(*counts) for counts in sensor_counts(day, records))
    except OSError as err:
        remove_temporaries(store, [p for part in new for p in part.paths(store.root)])
        raise StoreError(io_error(err, store)) from None
    return day, new, sensors
