"""Monthly roll-ups: one month's settled days of aggregates merged into one pair of files.

A query over a year would otherwise read and merge 365 days of partials.
A roll-up is the servers and clients aggregate (ingest.aggregates) of some
days of one month, written as

    rollups/servers/month=YYYY-MM/<name>.parquet
    rollups/clients/month=YYYY-MM/<name>.parquet

and recorded in the ledger's `rollups` table with the generation of each
day it covers (`days.generation`, bumped by every commit that adds records
to a day). A query uses a roll-up only when every day it covers is inside
the query's range and still has the recorded generation; otherwise it reads
those days' partials, so a stale roll-up is never wrong, only unused.

Only settled days are rolled up (older than the newest day with records by
SETTLE_DAYS, so a log that spills over midnight does not stale a fresh
roll-up). A month's roll-up grows a day at a time: the old roll-up merged
with the newly settled days, never more than ROLLUP_MERGE_ROWS rows read at
once, which bounds its memory; a month too large for that keeps no roll-up
and is read day by day. This module plans and writes; the store commits.

The same table holds the tier above (ingest.sightings): a year's first
and last sightings, keyed by the year (YYYY) instead of a month, written as

    sightings/servers/year=YYYY/<name>.parquet
    sightings/clients/year=YYYY/<name>.parquet
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

import pyarrow as pa

from synack.ingest.aggregates import merger
from synack.ingest.partials import (
    CLIENTS,
    COARSE_FLAG,
    KINDS,
    MERGE_ROWS,
    SERVERS,
    Partial,
    TwoFiles,
    read_aggregate,
    read_partial,
    write_aggregate,
)
from synack.ingest.store_files import FileStamp, StoreFS, tmp_name

ROLLUPS_DIR = "rollups"
#: Where the year tier of first and last sightings lives (ingest.sightings).
SIGHTINGS_DIR = "sightings"
#: A day is rolled up once the newest day with records is this many days later.
SETTLE_DAYS = 2
#: A roll-up step reads at most this many aggregate rows (the old roll-up's and the added days').
ROLLUP_MERGE_ROWS = MERGE_ROWS
#: A roll-up (or a year's sightings) of more rows than this is rewritten
#: only once its oldest missing settled day is ADVANCE_DAYS old, or its
#: period is over: every rewrite costs the whole file, so a large one is
#: paid once a week, not on every pass (a year of 40,000 records a day
#: spent half of each day's append rewriting its month), and queries read
#: the week's days from their partials meanwhile.
BATCHED_ROWS = 250_000
ADVANCE_DAYS = 7


def due(base: Rollup | None, period: str, oldest: str, settled: str) -> bool:
    """Whether the roll-up of `period` (YYYY-MM, or YYYY: a year's sightings)
    whose current file is `base` (None: none yet) is to take its missing
    settled days now, the oldest `oldest` (days before `settled` are
    settled): always when small or new (see BATCHED_ROWS)."""
    if base is None or base.rows <= BATCHED_ROWS:
        return True
    year, month = int(period[:4]), int(period[5:7]) if len(period) > 4 else 12
    over = f"{year + month // 12:04d}-{month % 12 + 1:02d}-01" <= settled
    return over or (dt.date.fromisoformat(settled) - dt.date.fromisoformat(oldest)).days >= ADVANCE_DAYS


@dataclass(frozen=True)
class Rollup(TwoFiles):
    """One month's roll-up (or one year's sightings), as the ledger's `rollups` table records it."""

    month: str  # YYYY-MM; YYYY for a year's sightings (ingest.sightings)
    name: str
    days: dict[str, int]  # day -> the generation it had when rolled up
    server_rows: int
    client_rows: int
    server_stamp: FileStamp | None = None  # its files' stamps (None: written before stamps)
    client_stamp: FileStamp | None = None

    def paths(self, root: PurePath) -> list[PurePath]:
        """Its servers and clients files."""
        return [rollup_path(root, kind, self.month, self.name) for kind in KINDS]

    def read(self, store: StoreFS, kind: str) -> pa.Table:
        """Its `kind` file, whole and verified (partials.read_aggregate)."""
        path, stamp, rows = self.file(store.root, kind)
        return read_aggregate(store, path, kind, stamp, rows)

    def days_json(self) -> str:
        return json.dumps(self.days, sort_keys=True)

    @property
    def is_sightings(self) -> bool:
        """Whether this is a year's sightings (ingest.sightings), not a month's roll-up."""
        return is_year(self.month)


def is_year(period: str) -> bool:
    """Whether a roll-up period (YYYY-MM or YYYY) names a year's sightings."""
    return len(period) == 4


def rollup_path(root: PurePath, kind: str, month: str, name: str) -> PurePath:
    """Where the `kind` ("servers" or "clients") file of a roll-up (or of a year's sightings) lives."""
    if is_year(month):
        return root / SIGHTINGS_DIR / kind / f"year={month}" / f"{name}.parquet"
    return root / ROLLUPS_DIR / kind / f"month={month}" / f"{name}.parquet"


def month_of(day: str) -> str:
    """The month (YYYY-MM) of a day (YYYY-MM-DD)."""
    return day[:7]


def settled_before(newest_day: str) -> str:
    """Days before the returned day (YYYY-MM-DD) are settled when `newest_day` is the newest with records."""
    return (dt.date.fromisoformat(newest_day) - dt.timedelta(days=SETTLE_DAYS - 1)).isoformat()


@dataclass(frozen=True)
class RollupStep:
    """One merge to run: `base` (the month's current roll-up, or None to start
    afresh) with the coarse partials of `add` (day -> partials)."""

    month: str
    base: Rollup | None
    add: dict[str, list[Partial]]
    generations: dict[str, int]  # of the added days


def missing_days(
    current: dict[str, Rollup], generations: dict[str, int], coarse: dict[str, list[Partial]], settled: str,
    period_of: Callable[[str], str],
) -> list[tuple[str, Rollup | None, list[str]]]:  # fmt: skip
    """Per period (`period_of` a day) with settled days (before `settled`,
    with coarse partials): (the period, its current roll-up in `current`
    or None when it has none or some of its days changed since, the settled
    days it lacks, oldest first); periods that lack none are left out."""
    by_period: dict[str, list[str]] = {}
    for day in sorted(generations):
        if day < settled and coarse.get(day):
            by_period.setdefault(period_of(day), []).append(day)
    out = []
    for period, days in sorted(by_period.items()):
        base = current.get(period)
        if base is not None and any(generations.get(d) != g for d, g in base.days.items()):
            base = None
        todo = [d for d in days if base is None or d not in base.days]
        if todo:
            out.append((period, base, todo))
    return out


def plan_steps(
    current: dict[str, Rollup], generations: dict[str, int], coarse: dict[str, list[Partial]], settled: str
) -> list[RollupStep]:
    """The next merge of each month that has settled days (before `settled`)
    its roll-up lacks. A roll-up whose days changed since (late records) is
    started afresh. Days of a month are added oldest first, as many per step
    as ROLLUP_MERGE_ROWS allows; a month whose next day does not fit gets no
    step (it is read day by day); a large roll-up waits for a week of days (due)."""
    steps = []
    for month, base, todo in missing_days(current, generations, coarse, settled, month_of):
        if not due(base, month, todo[0], settled):
            continue
        budget = ROLLUP_MERGE_ROWS - (base.rows if base is not None else 0)
        add: dict[str, list[Partial]] = {}
        for day in todo:
            rows = sum(p.rows for p in coarse[day])
            if rows > budget:
                break
            add[day], budget = coarse[day], budget - rows
        if add:
            steps.append(RollupStep(month, base, add, {d: generations[d] for d in add}))
    return steps


def write_rollup(store: StoreFS, step: RollupStep) -> Rollup:
    """Merge one step into a new roll-up written under temporary names; return its ledger row."""
    days = {**(step.base.days if step.base is not None else {}), **step.generations}
    digest = hashlib.sha256(json.dumps(days, sort_keys=True).encode()).hexdigest()[:12]
    name = f"r-{digest}"
    sizes: dict[str, int] = {}
    stamps: dict[str, FileStamp] = {}
    root = store.root
    for kind in KINDS:
        merge = merger(kind)
        tables = [step.base.read(store, kind)] if step.base is not None else []
        tables += [read_partial(store, p, kind) for parts in step.add.values() for p in parts
                   if p.coarse & COARSE_FLAG[kind]]  # fmt: skip
        merged = merge(tables)
        del tables
        sizes[kind] = len(merged)
        stamps[kind] = write_aggregate(store, merged, kind, tmp_name(rollup_path(root, kind, step.month, name)))
        del merged
    return Rollup(step.month, name, days, sizes[SERVERS], sizes[CLIENTS], stamps[SERVERS], stamps[CLIENTS])
