"""Retention: old days' records deleted, their aggregates kept.

A year of records is most of a store's size, while every inventory, first
sighting and new or gone port is answered from the aggregates (partials,
monthly roll-ups, years' sightings). `prune_records` deletes the record
files of the days before a cut, one day per ledger transaction (the files
retired, deleted after the grace period like any replaced file), and
marks the days pruned: their aggregates and counts stay, so whole-day
answers stay exact; a range whose edge falls inside a pruned day is
answered to the whole day (inventory.dailies), and `rebuild` leaves a
pruned day's aggregates as they are (there are no records to rebuild
them from). A day whose records have no aggregates (a store an older
synack wrote, not yet upgraded) is never pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from synack.ingest.store import Store


@dataclass
class Pruned:
    """What a prune did: the days pruned, their record files and records, and the days it had to keep."""

    days: list[str] = field(default_factory=list)
    files: int = 0
    records: int = 0
    kept_without_aggregates: list[str] = field(default_factory=list)


def prune_records(store: Store, before: str, stop: Callable[[], bool] | None = None) -> Pruned:
    """Delete the records of every day before `before` (YYYY-MM-DD) that
    has aggregates, keeping the aggregates; return what was done. Each day
    is its own transaction: a crash or `stop` leaves whole days pruned or
    not, and running it again finishes the job."""
    book, root = store.ledger, store.root
    without = set(book.days_without_partials())
    done = Pruned()
    for day in book.record_days():
        if day >= before or (stop is not None and stop()):
            break
        if day in without:
            done.kept_without_aggregates.append(day)
            continue
        files = book.file_rows(day=day, records_only=True)
        with store.transaction(cleanup=[]):
            book.remove_files(f.path for f in files)
            retired = store.retire(root / f.path for f in files)
            book.mark_pruned(day)
        store.hide(retired)
        done.days.append(day)
        done.files += len(files)
        done.records += sum(f.rows for f in files)
    return done
