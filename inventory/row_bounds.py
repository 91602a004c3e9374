"""What a range's rows weigh at most, known from the files' footers alone.

A question whose answer may be too big for one merge first weighs the
range's rows (inventory.address_bands), which costs a read of every file
of the range; on a year of 350,000 records a day that read was a third
of `servers`, `new-ports` and `gone-ports`, and nearly always found that
one band holds the answer. A Parquet footer holds, per row group, its
rows, the values of each list column and the statistics of the sorted
columns (state, server_v4: ingest.partials), so an upper bound of the
weight follows from the footers: a row group whose statistics rule out
every state or address asked for is left out, any other counts whole.
When that bound fits, the rows are not read to be weighed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq

from synack.inventory.dailies import read_catalog, select, sightings_answer
from synack.inventory.networks import Network
from synack.inventory.query_rows import number_spans
from synack.inventory.store_reader import StoreLike

#: The leaf columns of the client lists of a server row.
_LIST_LEAVES = ("clients_v4.list.element", "clients_text.list.element")


def weight_bound(store: StoreLike, kind: str, start: dt.datetime | None, end: dt.datetime | None, *,
                 columns: list[str], states: tuple[str, ...], nets: list[Network] | None, number: str,
                 row_weight: float, list_weight: float = 0.0) -> float | None:  # fmt: skip
    """An upper bound of what the `kind` rows of [start, end) in `states`
    whose `number` (server_v4 or client_v4) may lie in `nets` (None: any)
    weigh: `row_weight` a row and `list_weight` a client-list entry, of the
    files a read of `columns` takes (the years' sightings when they can
    answer). None when some of the range's rows are not in aggregate files
    (re-aggregated from records: an older store's days, a cut day's edge)."""
    current = read_catalog(store)
    chosen = select(current, start, end, kind, sightings=sightings_answer(kind, columns))
    if chosen.legacy_days or chosen.straddling:
        return None
    snap = current.snapshot
    files = [(snap.rollup_file(kind, r), r.stamp(kind), r.kind_rows(kind)) for r in chosen.rollups]
    files += [(snap.partial_file(kind, p), p.stamp(kind), p.kind_rows(kind)) for p in chosen.partials]
    intervals = None if nets is None else number_spans(nets)
    total = 0.0
    for rel, stamp, rows in files:
        rows_kept, entries = _kept(snap.footer(rel, stamp, rows), states, number, intervals)
        total += rows_kept * row_weight + entries * list_weight
    return total


def _kept(metadata: pq.FileMetaData, states: tuple[str, ...], number: str,
          intervals: list[tuple[int, int]] | None) -> tuple[int, int]:  # fmt: skip
    """(rows, client-list entries) of the row groups of a file whose
    statistics leave room for a row of `states` with `number` in `intervals`."""
    paths = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    state, host = paths.get("state"), paths.get(number)
    leaves = [paths[p] for p in _LIST_LEAVES if p in paths]
    rows = entries = 0
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        if state is not None and not _overlaps(group.column(state).statistics, [(s, s) for s in states]):
            continue
        if host is not None and intervals is not None and not _overlaps(group.column(host).statistics, intervals):
            continue
        rows += group.num_rows
        entries += sum(group.column(j).num_values for j in leaves)
    return rows, entries


def _overlaps(statistics: pq.Statistics | None, intervals: Sequence[tuple[Any, Any]]) -> bool:
    """Whether a row group's values (from `statistics`; any when it has
    none) may hold one inside one of `intervals` (lo, hi inclusive)."""
    if statistics is None or not statistics.has_min_max:
        return True
    low, high = statistics.min, statistics.max
    return any(lo <= high and low <= hi for lo, hi in intervals)
