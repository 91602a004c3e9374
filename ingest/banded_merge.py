"""A year's sightings merged a band at a time: memory that follows a band, not the year.

A year's sightings of a busy network (10^5 records a day: a million server
rows holding 20 M client entries, 1.7 M client rows) take 1.5 GB merged
whole. `write_banded` merges them in bands instead, in the order a whole
merge sorts its rows (aggregates.merger), so the file it writes
holds the same rows in the same order:

* the inputs other than the year's old sightings (day partials, month
  roll-ups) are first merged into sorted runs of at most RUN_BYTES each,
  written to a temporary directory with statistics of the band columns
  (an aggregate's client rows are in server order, which a band of ports
  could not prune; a year started afresh has hundreds of inputs, which a
  band could not read one by one);
* bands are cut by one value of each leading column (state; for client
  rows, whose server is left out, proto too) and ranges of the ranged
  columns taken as one number (server_v4; for client rows server_p then
  client_v4), weighed from a histogram of the inputs' rows (a server row
  weighs one more row per LIST_SHARE entries of its client lists), never
  inside one bucket of that number, so one key's rows share a band;
* each band is read from the old sightings (its bytes read and verified
  once) and every run, their row groups pruned by the band's filter,
  merged, and appended to the new file.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synack.ingest import heap, partials
from synack.ingest.aggregates import STATES, merger, schema_of
from synack.ingest.errors import StoreError
from synack.ingest.partials import AGGREGATE_FORMAT, CLIENTS, FORMAT_KEY, KINDS, ROW_GROUP, SERVERS, read_aggregate
from synack.ingest.store_files import FileStamp, StoreFS

#: Weighed rows of a band (see the module).
BAND_ROWS = {SERVERS: 100_000, CLIENTS: 250_000}
LIST_SHARE = 10
#: Arrow bytes of inputs gathered before they are merged into a run.
RUN_BYTES = 24 << 20
_LEADING = {SERVERS: ["state"], CLIENTS: ["state", "proto"]}
_RANGED = {SERVERS: [("server_v4", 0)], CLIENTS: [("server_p", 32), ("client_v4", 0)]}  # (column, bits above)
#: Low bits of the ranged number a cut never falls inside (none of a server; a port's clients by /16).
_BUCKET_BITS = {SERVERS: 0, CLIENTS: 16}
BAND_COLUMNS = {kind: _LEADING[kind] + [c for c, _ in _RANGED[kind]] for kind in KINDS}
_LISTS = ["clients_v4", "clients_text"]

Input = tuple[PurePath, FileStamp | None, int]  # (path, stamp, rows) of a committed aggregate file


def write_banded(store: StoreFS, base: Input | None, inputs: list[Input], kind: str,
                 reduce: Callable[[pa.Table], pa.Table]) -> tuple[int, pa.Buffer]:  # fmt: skip
    """The `kind` sightings of `base` (the year's old sightings, or None)
    merged with `inputs` (each `reduce`d into sightings rows when read):
    (their rows, the bytes of a Parquet file written band by band; see the module).
    Raises StoreError when the temporary directory cannot be written, and
    what reading a store file raises (FileNotFoundError, FileDamaged)."""
    schema = schema_of(kind)
    with _scratch_writes():
        directory = tempfile.TemporaryDirectory(prefix="synack-sightings-")
    with directory as scratch:
        sources = [] if base is None else [_kept(store, base, schema)]
        sources += [_run_reader(path, schema) for path in _runs(store, inputs, kind, reduce, Path(scratch))]
        bands = _bands(_histogram(sources, kind), kind)
        rows = _merged(sources, bands, kind, Path(scratch) / "merged.parquet")
        del sources
        heap.give_back()
        with pa.OSFile(str(Path(scratch) / "merged.parquet")) as merged:
            return rows, merged.read_buffer()


@contextlib.contextmanager
def _scratch_writes() -> Iterator[None]:
    """Run a block that writes under the temporary directory: an OSError
    there (no room, no such directory) becomes one StoreError naming it.
    Reads of store files stay outside: a missing one is the store's error."""
    try:
        yield
    except OSError as err:
        raise StoreError(f"cannot write a year's sightings under {tempfile.gettempdir()}: {err.strerror or err} "
                         "(set TMPDIR to a directory with room)") from None  # fmt: skip


def banded_options(kind: str) -> dict[str, Any]:
    """The writer's options of a banded sightings file: an aggregate's, with
    statistics of every band column, so the next merge's bands prune it."""
    options = partials.aggregate_options(kind)
    options["write_statistics"] = sorted({*options["write_statistics"], *BAND_COLUMNS[kind]})
    return options


Source = Callable[..., pa.Table]  # (**pq.read_table options) -> rows


def _kept(store: StoreFS, base: Input, schema: pa.Schema) -> Source:
    """A reader of the old sightings' rows, its bytes read and verified once."""
    path, stamp, _ = base
    data = store.verified_bytes(path, stamp)
    return lambda **options: store.parsed(path, data, schema=schema, **options)


def _run_reader(path: Path, schema: pa.Schema) -> Source:
    return lambda **options: pq.read_table(path, schema=schema, page_checksum_verification=True, **options)


def _runs(store: StoreFS, inputs: list[Input], kind: str, reduce: Callable[[pa.Table], pa.Table],
          scratch: Path) -> Iterator[Path]:  # fmt: skip
    """`inputs` read one at a time, verified and reduced, merged into sorted
    runs of about RUN_BYTES, each written under `scratch`; their paths."""
    merge = merger(kind)
    waiting: list[pa.Table] = []
    held = 0
    for i, (path, stamp, rows) in enumerate(inputs):
        table = reduce(read_aggregate(store, path, kind, stamp, rows))
        waiting.append(table)
        held += table.nbytes
        if held > RUN_BYTES or i == len(inputs) - 1:
            run = merge(waiting)
            waiting, held = [], 0
            out = scratch / f"run-{i}.parquet"
            with _scratch_writes():
                pq.write_table(run, out, row_group_size=ROW_GROUP[kind], write_page_checksum=True,
                               **banded_options(kind))  # fmt: skip
            del run
            heap.give_back()
            yield out


def _histogram(sources: list[Source], kind: str) -> pa.Table:
    """Per leading value and bucket of the ranged number (_BUCKET_BITS), the
    weight of the sources' rows (a row weighs LIST_SHARE, and one more per
    client-list entry): the shape bands are cut from, as small as the buckets."""
    columns = BAND_COLUMNS[kind] + (_LISTS if kind == SERVERS else [])
    parts = []
    for read in sources:
        rows = read(columns=columns)
        weight = np.full(len(rows), LIST_SHARE, np.int64)
        for name in _LISTS if kind == SERVERS else ():
            weight += pc.fill_null(pc.list_value_length(rows.column(name)), 0).to_numpy().astype(np.int64)
        bucket, comparable = _numbers(rows, kind)
        part = rows.select(_LEADING[kind]).append_column("bucket", pa.array(bucket >> np.uint64(_BUCKET_BITS[kind])))
        part = part.append_column("comparable", pa.array(comparable)).append_column("weight", pa.array(weight))
        del rows
        parts.append(part.group_by([*_LEADING[kind], "bucket", "comparable"]).aggregate([("weight", "sum")]))
    whole = pa.concat_tables(parts)
    return whole.group_by([*_LEADING[kind], "bucket", "comparable"]).aggregate([("weight_sum", "sum")])


def _numbers(rows: pa.Table, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ranged columns taken as one number (0 where one is null),
    and whether it has them all (a row without cannot be compared)."""
    number = np.zeros(len(rows), np.uint64)
    comparable = np.ones(len(rows), bool)
    for column, shift in _RANGED[kind]:
        values = rows.column(column)
        comparable &= pc.is_valid(values).to_numpy(zero_copy_only=False)
        number |= pc.fill_null(values, 0).to_numpy().astype(np.uint64) << np.uint64(shift)
    return number, comparable


def _bands(histogram: pa.Table, kind: str) -> list[pc.Expression]:
    """Filters that cut the histogram's rows into bands of about
    BAND_ROWS[kind] rows by weight, in merge order: every row is in exactly
    one band, one bucket's rows in the same."""
    leading = _LEADING[kind]
    states = STATES.to_pylist()
    groups = histogram.group_by(leading).aggregate([]).to_pylist()
    groups.sort(key=lambda g: tuple((states.index(g[c]), "") if c == "state" else (g[c] is None, g[c] or "")
                                    for c in leading))  # fmt: skip
    unit = BAND_ROWS[kind] * LIST_SHARE
    out = []
    for group in groups:
        where = None
        for column in leading:
            one = pc.field(column).is_null() if group[column] is None else pc.field(column) == group[column]
            where = one if where is None else where & one
        assert where is not None
        inside = histogram.filter(where)
        if not pc.all(inside.column("comparable")).as_py():
            out.append(where)  # a number that cannot be compared: the group is one band
            continue
        bucket = inside.column("bucket").to_numpy()
        order = np.argsort(bucket, kind="stable")
        edges, total = bucket[order], np.cumsum(inside.column("weight_sum_sum").to_numpy()[order])
        marks = np.arange(1, total[-1] // unit + 1) * unit
        chosen = {int(edges[i]) for i in np.searchsorted(total, marks)} - {int(edges[0])}
        cuts = sorted(c << _BUCKET_BITS[kind] for c in chosen)
        for lo, hi in zip([None, *cuts], [*cuts, None]):
            band = where
            if lo is not None:
                band = band & _bound(kind, lo, below=False)
            if hi is not None:
                band = band & _bound(kind, hi, below=True)
            out.append(band)
    return out


def _bound(kind: str, number: int, below: bool, ranged: list[tuple[str, int]] | None = None) -> pc.Expression:
    """A filter of the rows whose ranged columns ((column, bits above),
    highest first), taken as one number, are at least `number` (or, with
    `below`, less than it); plain comparisons, which row-group statistics
    prune by."""
    (column, shift), *rest = _RANGED[kind] if ranged is None else ranged
    field = pc.field(column)
    value = pa.scalar(number >> shift, schema_of(kind).field(column).type)
    if not rest:
        return field < value if below else field >= value
    inner = _bound(kind, number & ((1 << shift) - 1), below, rest)
    return ((field < value) if below else (field > value)) | ((field == value) & inner)


def _merged(sources: list[Source], bands: list[pc.Expression], kind: str, out: Path) -> int:
    """The sources merged a band at a time into the Parquet file `out`; its rows."""
    merge = merger(kind)
    stored = schema_of(kind).with_metadata({FORMAT_KEY: AGGREGATE_FORMAT})
    with _scratch_writes():
        writer = pq.ParquetWriter(out, stored, write_page_checksum=True, **banded_options(kind))
    written = 0
    try:
        for where in bands:
            merged = merge([read(filters=where) for read in sources])
            if len(merged):
                with _scratch_writes():
                    writer.write_table(merged.cast(stored), row_group_size=ROW_GROUP[kind])
                written += len(merged)
            del merged
            heap.give_back()
    finally:
        with _scratch_writes():
            writer.close()
    return written
