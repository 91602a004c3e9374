"""First and last sightings: the tier above the monthly roll-ups.

"Is this port new?" and "has it gone quiet?" need, for every key of the
whole history, its first and last sighting. A year's sightings are the
aggregates of its settled days merged, with what only a range needs of
the client rows taken out, so they stay as small as the distinct keys:

* servers: the rows of the servers aggregate (ingest.aggregates), whole:
  per (sensor, server, proto, port, state) first and last seen,
  connections, services, the first reply and the distinct clients (a
  server's clients over a year are its months' lists united, so a
  whole-history `servers` reads one file a year, not twelve);
* clients: the rows of the clients aggregate with the server left out
  (server_h null, server_v4 NOT_V4): per (sensor, client, proto, port,
  state) first and last seen, connections and services.

Both merge with merge_servers / merge_clients like any aggregate, so a
query reads a year's sightings beside the roll-ups and partials of the
days they do not cover and merges them alike. A year's sightings are a
roll-up of the `rollups` table keyed by the year (ingest.rollups), with
the generation of every day they cover: a day that changes later (a
backfill) makes them unused until the next pass starts them afresh from
the year's roll-ups, which is how late data moves a first sighting
earlier. A pass adds the newly settled days to the year's sightings (the
old file merged with those days' partials) in the writer's commit, like a
roll-up step; this module plans and writes, the store commits. Small
sightings advance a day at a time; large ones a week of settled days at a
time (rollups.due), so the year's file is rewritten once a week, not on
every pass, merged a band at a time (ingest.banded_merge), and a question
reads the partials of at most LAG_DAYS + ADVANCE_DAYS days after them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pyarrow as pa

from synack.ingest import banded_merge
from synack.ingest.aggregates import NOT_V4, merge_clients, merger
from synack.ingest.partials import (
    CLIENTS,
    COARSE_FLAG,
    KINDS,
    MERGE_ROWS,
    SERVERS,
    Partial,
    read_aggregate,
    write_aggregate,
)
from synack.ingest.rollups import Rollup, due, missing_days, rollup_path
from synack.ingest.store_files import FileStamp, StoreFS, tmp_name

#: Days join their year's sightings this long after the newest day with
#: records: a question whose range ends in these days (the daily report
#: compares its day with each of the seven before) reads the sightings
#: and the days after them, which a range ending inside the sightings
#: could not (they cannot be cut). A week's margin besides.
LAG_DAYS = 15
#: The aggregate columns a reduced row empties: what only a range's answer needs.
RANGE_ONLY: dict[str, tuple[str, ...]] = {SERVERS: (), CLIENTS: ("server_h", "server_v4")}


def sightings_before(newest_day: str) -> str:
    """Days before the returned day (YYYY-MM-DD) belong in their year's
    sightings when `newest_day` is the newest with records (LAG_DAYS)."""
    return (dt.date.fromisoformat(newest_day) - dt.timedelta(days=LAG_DAYS)).isoformat()


def year_of(day: str) -> str:
    """The year (YYYY) of a day (YYYY-MM-DD): the key of its sightings."""
    return day[:4]


def reduced(table: pa.Table, kind: str) -> pa.Table:
    """One aggregate file's rows of `kind` as sightings (see the module):
    server rows as they are, client rows without their server, merged by
    the key that is left."""
    if kind == SERVERS:
        return table  # kept whole: an aggregate file is already one row per key
    server = table.schema.get_field_index("server_h")
    out = table.set_column(server, "server_h", pa.nulls(len(table), pa.string()))
    v4 = out.schema.get_field_index("server_v4")
    return merge_clients([out.set_column(v4, "server_v4", pa.array(np.full(len(table), NOT_V4, np.uint32)))])


@dataclass(frozen=True)
class SightingsStep:
    """One year's sightings to write: `base` (its current sightings, or None
    to start afresh) merged with the `rollups` and `partials` of days it
    lacks; `generations` of every day the result covers."""

    year: str
    base: Rollup | None
    rollups: list[Rollup]
    partials: list[Partial]
    generations: dict[str, int]


def plan_sightings(current: dict[str, Rollup], generations: dict[str, int], coarse: dict[str, list[Partial]],
                   settled: str) -> list[SightingsStep]:  # fmt: skip
    """The step of each year whose sightings lack settled days (before
    `settled`, see sightings_before; `coarse`: their coarse partials by day). Sightings whose
    days changed since are started afresh, from the year's current
    month roll-ups (those whose days are all unchanged) and the partials of
    the days no roll-up covers. Large sightings wait for a week of settled
    days, or their year's end (rollups.due). `current`
    holds the roll-ups of both tiers."""
    months = [r for r in current.values() if not r.is_sightings and _current(r, generations)]
    steps = []
    for year, base, todo in missing_days(current, generations, coarse, settled, year_of):
        if not due(base, year, todo[0], settled):
            continue
        rollups = [r for r in months if year_of(r.month) == year and r.days and set(r.days) <= set(todo)]
        covered = {d for r in rollups for d in r.days}
        partials = [p for d in todo if d not in covered for p in coarse[d]]
        gens = {d: generations[d] for d in todo}
        steps.append(SightingsStep(year, base, rollups, partials, gens))
    return steps


def _current(rollup: Rollup, generations: dict[str, int]) -> bool:
    return all(generations.get(d) == g for d, g in rollup.days.items())


def write_sightings(store: StoreFS, step: SightingsStep) -> Rollup:
    """Merge one step into a year's new sightings written under temporary
    names; return its ledger row. Inputs are read and reduced one file at a
    time, merged whenever MERGE_ROWS reduced rows wait: memory follows the
    year's distinct keys and one input file, not the days. A kind whose
    inputs hold more than banded_merge.BAND_ROWS rows is merged a band at a
    time (ingest.banded_merge): memory then follows a band."""
    days = {**(step.base.days if step.base is not None else {}), **step.generations}
    digest = hashlib.sha256(json.dumps(days, sort_keys=True).encode()).hexdigest()[:12]
    name = f"s-{digest}"
    sizes: dict[str, int] = {}
    stamps: dict[str, FileStamp] = {}
    for kind in KINDS:
        merge = merger(kind)
        inputs = _input_files(store, step, kind)
        if sum(rows for _, _, rows in inputs) > banded_merge.BAND_ROWS[kind]:
            base = inputs[0] if step.base is not None else None
            rest = inputs[1:] if base is not None else inputs
            sizes[kind], data = banded_merge.write_banded(
                store, base, rest, kind, functools.partial(reduced, kind=kind)
            )
            stamps[kind] = store.write_bytes(tmp_name(rollup_path(store.root, kind, step.year, name)), data)
            continue
        done: list[pa.Table] = []
        waiting = 0
        for table in _inputs(store, step, kind):
            done.append(table)
            waiting += len(table)
            if waiting > MERGE_ROWS and len(done) > 1:
                done = [merge(done)]
                waiting = len(done[0])
        merged = merge(done)
        del done
        sizes[kind] = len(merged)
        stamps[kind] = write_aggregate(store, merged, kind, tmp_name(rollup_path(store.root, kind, step.year, name)))
        del merged
    return Rollup(step.year, name, days, sizes[SERVERS], sizes[CLIENTS], stamps[SERVERS], stamps[CLIENTS])


def _input_files(store: StoreFS, step: SightingsStep, kind: str) -> list[tuple[PurePath, FileStamp | None, int]]:
    """(path, stamp, rows) of the step's `kind` inputs: its base, roll-ups and coarse partials."""
    partials = [p for p in step.partials if p.coarse & COARSE_FLAG[kind]]
    bases = [step.base] if step.base is not None else []
    return [f.file(store.root, kind) for f in [*bases, *step.rollups, *partials]]


def _inputs(store: StoreFS, step: SightingsStep, kind: str) -> Iterator[pa.Table]:
    """The step's `kind` inputs (_input_files), each read whole and verified, reduced (the base already is)."""
    for i, (path, stamp, rows) in enumerate(_input_files(store, step, kind)):
        table = read_aggregate(store, path, kind, stamp, rows)
        yield table if i == 0 and step.base is not None else reduced(table, kind)
