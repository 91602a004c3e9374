"""An answer as a stream of DataFrames: one per band of addresses, in the answer's order.

A banded query (inventory.address_bands) yields one DataFrame per band.
When the answer is sorted by the bands' host, the frames are already in
order and pass through (cut at the limit); otherwise they are sorted by an
external merge (sorted_frames: each frame a sorted run in a temporary
Arrow file, only the sort columns in memory, ranked as
query_rows.sort_by_address ranks a DataFrame) and handed out again a slice
at a time.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest import heap
from synack.ingest.addresses import ipv4_numbers
from synack.inventory.networks import ipv4_text
from synack.inventory.query_rows import ADDRESS_COLUMNS, address_ranks, plain
from synack.inventory.store_reader import InventoryError

#: Rows handed out at once from a gathered answer.
SLICE_ROWS = 100_000


@contextlib.contextmanager
def temporary_writes(what: str) -> Iterator[None]:
    """Run a block that writes `what` under the temporary directory: an
    OSError there (no room, no such directory) becomes one InventoryError
    that names the directory and how to choose another."""
    try:
        yield
    except OSError as err:
        raise InventoryError(
            f"cannot write {what} under {tempfile.gettempdir()}: {err.strerror or err} "
            "(set TMPDIR to a directory with room)"
        ) from None


def temporary_directory(prefix: str, what: str) -> tempfile.TemporaryDirectory[str]:
    """A new temporary directory for `what` (see temporary_writes)."""
    with temporary_writes(what):
        return tempfile.TemporaryDirectory(prefix=prefix)


def joined(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """An answer's frames as one DataFrame (the first one, columns and
    dtypes, when all are empty), with the first one's `attrs`."""
    parts = list(frames)
    if len(parts) == 1:
        return parts[0]
    whole = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    whole.attrs = dict(parts[0].attrs)
    return whole


def detached(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` (a few rows kept from a band) that shares no
    buffer with the frame it was cut from. pandas keeps a slice of an
    Arrow-backed column (text) as a view of its parent's whole buffers,
    copy() included, so rows kept from every band would hold every band:
    those columns go through Python objects (cheap for a few rows)."""
    copy = frame.copy()  # numpy columns copied
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.StringDtype | pd.ArrowDtype):
            copy[name] = copy[name].astype(object).astype(dtype)
    return copy


def limited(frames: Iterable[pd.DataFrame], limit: int | None) -> Iterator[pd.DataFrame]:
    """`frames` cut after `limit` rows in all (None: every row); at least one frame, maybe empty."""
    left = limit
    for i, frame in enumerate(frames):
        if left is not None and len(frame) > left:
            frame = frame.head(left)
        if len(frame) or i == 0:
            yield frame
        if left is not None:
            left -= len(frame)
            if left <= 0:
                return


def sorted_frames(frames: Iterable[pd.DataFrame], sort: Sequence[str], limit: int | None = None
                  ) -> Iterator[pd.DataFrame]:  # fmt: skip
    """The rows of `frames` sorted by the columns `sort` (address columns
    numerically, IPv4 first; empty values last; ties in the frames' order),
    cut after `limit`, SLICE_ROWS at a time. Raises InventoryError for a
    sort column the frames do not have.

    An external merge: each frame is sorted and written to a temporary
    Arrow file (a run), only its sort columns kept in memory; their one
    global order takes each output slice as one contiguous range of every
    run, read back through a memory map opened for that slice alone."""
    sort = list(dict.fromkeys(sort))  # a column named twice sorts as once
    with temporary_directory("synack-sort-", "an answer's sorted runs") as tmp:
        first: pd.DataFrame | None = None
        runs: list[Path] = []
        for frame in frames:
            if first is None:
                first = frame.head(0)
                missing = [c for c in sort if c not in first]
                if missing:
                    raise InventoryError(
                        f"--sort {','.join(missing)}: no such column (the columns: {', '.join(first)})"
                    )
            if len(frame):
                bare = frame.copy(deep=False)
                bare.attrs = {}  # what the answer covers stays with `first`
                table = pa.Table.from_pandas(bare, preserve_index=False)
                del frame, bare
                table = table.take(pa.array(_order([_ranks(table.column(c), c in ADDRESS_COLUMNS) for c in sort])))
                runs.append(Path(tmp) / f"run-{len(runs)}.arrow")
                with temporary_writes("an answer's sorted runs"), pa.ipc.new_file(str(runs[-1]), table.schema) as w:
                    w.write_table(table)
                del table
                heap.give_back()
        assert first is not None, "an answer has at least one frame"
        if not runs:
            yield first
            return
        keys = [_compact(_run_columns(run, sort)) for run in runs]
        starts = np.cumsum([0, *(len(k) for k in keys)])
        key_table = pa.concat_tables(_alike(keys), promote_options="permissive")
        del keys
        order = _order([_ranks(key_table.column(c), c in ADDRESS_COLUMNS) for c in sort])
        del key_table
        if limit is not None:
            order = order[:limit]
        if not len(order):
            yield first
        for at in range(0, len(order), SLICE_ROWS):
            frame = plain(_merged_slice(runs, starts, order[at : at + SLICE_ROWS])).to_pandas()
            frame = frame.astype({c: t for c, t in first.dtypes.items() if frame[c].dtype != t})
            frame.attrs = dict(first.attrs)
            yield frame
            heap.give_back()


def _run_columns(run: Path, columns: list[str]) -> pa.Table:
    """The columns `columns` of a run file, copied out of its memory map."""
    with pa.memory_map(str(run)) as source:
        table = pa.ipc.open_file(source).read_all().select(columns)
        return pa.table([c.combine_chunks() for c in table.columns], names=columns)


def _merged_slice(runs: list[Path], starts: np.ndarray, rows: np.ndarray) -> pa.Table:
    """The rows `rows` (positions in the runs one after another, `starts`
    their first positions), in that order. Each run is sorted in the global
    order, so a slice of that order takes one contiguous range of each run."""
    run_of = np.searchsorted(starts, rows, side="right") - 1
    offset = rows - starts[run_of]
    parts, part_start = [], np.zeros(len(runs), dtype=np.int64)
    low = np.zeros(len(runs), dtype=np.int64)
    taken = 0
    for run in np.unique(run_of):
        chosen = offset[run_of == run]
        low[run], high = int(chosen.min()), int(chosen.max()) + 1
        with pa.memory_map(str(runs[run])) as source:
            whole = pa.ipc.open_file(source).read_all()
            parts.append(whole.slice(low[run], high - low[run]).combine_chunks())  # copied out of the map
        part_start[run] = taken
        taken += high - low[run]
    table = pa.concat_tables(_alike(parts), promote_options="permissive")
    return table.take(pa.array(part_start[run_of] + offset - low[run_of]))


def _order(ranks: list[np.ndarray]) -> np.ndarray:
    """The row order of ranks (first the first), ties in row order: one
    stable argsort of the ranks packed into one integer when they fit in
    63 bits (a sort key of 8 bytes a row), else a lexsort."""
    if not ranks:
        return np.array([], dtype=np.int64)
    widths = [int(r.max()).bit_length() if len(r) else 0 for r in ranks]
    if sum(widths) > 63:
        return np.lexsort([np.arange(len(ranks[0])), *ranks[::-1]])
    packed = np.zeros(len(ranks[0]), dtype=np.int64)
    for rank, width in zip(ranks, widths):
        packed = (packed << width) | rank.astype(np.int64)
    return np.argsort(packed, kind="stable")


def _compact(table: pa.Table) -> pa.Table:
    """`table` with its text columns dictionary-encoded (most repeat: names,
    services, sensors), with indices of 8 or 16 bits when the dictionary
    is small, its address columns of IPv4 hosts only as their uint32
    numbers, and its integers in the fewest bytes that hold them."""
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            encoded = column.combine_chunks().dictionary_encode()
            size = len(encoded.dictionary)
            if size * 2 <= len(encoded):
                index = pa.int8() if size < 1 << 7 else pa.int16() if size < 1 << 15 else pa.int32()
                column = encoded.cast(pa.dictionary(index, encoded.type.value_type))
            elif name in ADDRESS_COLUMNS:  # mostly unique addresses: IPv4 ones as numbers
                column = _address_numbers(column.combine_chunks()) or column
            # other mostly unique text (first clients) stays as it is
        elif (
            pa.types.is_int64(column.type)
            and len(column)
            and 0 <= pc.min(column).as_py() <= pc.max(column).as_py() < 1 << 16
        ):
            column = column.cast(pa.uint16())  # ports; the answer's own dtype is restored on the way out
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _address_numbers(values: pa.Array) -> pa.Array | None:
    """`values` (addresses) as uint32 numbers, null where empty; None when one is not IPv4."""
    numbers, is_v4 = ipv4_numbers(values)
    valid = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(numbers.astype(np.uint32), mask=~valid) if np.array_equal(is_v4, valid) else None


def _alike(tables: list[pa.Table]) -> list[pa.Table]:
    """`tables` (compacted alike, but their integer and index widths may
    differ, and an address column may be numbers in some and text in
    others) with each column of one type: the widest."""
    wanted = {}
    for name in tables[0].column_names:
        types = {t.schema.field(name).type for t in tables} - {pa.null()}
        if len(types) > 1 and name in ADDRESS_COLUMNS and pa.uint32() in types:
            tables = [_address_text(t, name) for t in tables]
            types = {t.schema.field(name).type for t in tables} - {pa.null()}
        if len(types) > 1:
            dictionary = [t for t in types if pa.types.is_dictionary(t)]
            text = dictionary or any(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types)
            if len(dictionary) < len(types):  # text encoded in some bands only, or of two widths: plain text
                wanted[name] = pa.large_string() if text else pa.int64()
            else:
                wanted[name] = pa.dictionary(pa.int32(), dictionary[0].value_type)
    if not wanted:
        return tables
    return [t.cast(pa.schema([pa.field(f.name, wanted.get(f.name, f.type)) for f in t.schema])) for t in tables]


def _address_text(table: pa.Table, name: str) -> pa.Table:
    """`table` with its address column `name` as text again when _compact made it numbers."""
    column = table.column(name)
    if column.type != pa.uint32():
        return table
    values = column.combine_chunks()
    text = pc.if_else(pc.is_valid(values), ipv4_text(values), pa.scalar(None, pa.string()))
    return table.set_column(table.column_names.index(name), name, text)


def _ranks(column: pa.ChunkedArray, address: bool) -> np.ndarray:
    """Each value's rank (empty values last), addresses by number
    (query_rows.address_ranks); a dictionary column by its dictionary's
    ranks, so millions of rows never become Python strings."""
    values = column.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(column.type) else (
        column.combine_chunks())  # fmt: skip
    if pa.types.is_null(values.type):
        return np.zeros(len(values), dtype=np.int64)
    if not pa.types.is_dictionary(values.type):
        if address and not pa.types.is_integer(values.type):  # (IPv4 addresses as numbers rank as numbers)
            return address_ranks(values)
        return pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy()
    dictionary = values.dictionary
    if address:
        ranked = address_ranks(dictionary)
    else:
        ranked = pc.rank(dictionary, sort_keys="ascending", tiebreaker="dense").to_numpy()
    lookup = np.append(ranked, len(dictionary) + 1)  # an empty value after every other
    return lookup[pc.fill_null(values.indices, len(dictionary)).to_numpy()]
