"""Zeek-named tables from a reader -> normalized connection records.

The normalized record is DESIGN.md's table (schema.CORE_SCHEMA first, in
that order, then every other column of the log in log order, none dropped).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.arrays import one_array
from synack.ingest.errors import NotAConnLog
from synack.ingest.handshake import derive_outcome
from synack.ingest.schema import CORE_SCHEMA, DICT_STRING, REQUIRED, normalized_name

#: Columns that can name the sensor, in order of preference; the ingest's
#: `--sensor` fills the rows where none is set.
SENSOR_COLUMNS = ("sensor", "_system_name")
DEFAULT_SENSOR = "default"


def missing_required(zeek_names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the required conn.log columns (normalized names) not in `zeek_names`."""
    present = {normalized_name(n) for n in zeek_names}
    return [c for c in REQUIRED if c not in present]


def normalize(table: pa.Table, sensor: str | None = None) -> pa.Table:
    """Return the normalized records of one reader table.

    `table` has Zeek field names and reader types; `sensor` fills the sensor
    of rows whose log does not name one (DEFAULT_SENSOR when None). Raises
    NotAConnLog when a required column is missing.
    """
    missing = missing_required(table.column_names)
    if missing:
        raise NotAConnLog(f"not a conn log: no {', '.join(missing)} column")
    names = [normalized_name(n) for n in table.column_names]
    table = table.rename_columns(names)
    columns: dict[str, pa.Array] = {name: one_array(col) for name, col in zip(table.column_names, table.columns)}
    n = len(table)
    proto = columns["proto"]
    if not pa.types.is_dictionary(proto.type):
        proto = proto.cast(pa.string()).dictionary_encode()
    columns["proto"] = pa.DictionaryArray.from_arrays(proto.indices, pc.utf8_lower(proto.dictionary))
    columns["sensor"] = sensor_column(columns, n, sensor or DEFAULT_SENSOR)
    columns.update(derive_outcome(pa.table(columns)))

    out_names: list[str] = []
    out_cols: list[pa.Array] = []
    for f in CORE_SCHEMA:
        col = columns.get(f.name)
        if col is None:
            col = pa.nulls(n, f.type)
        elif col.type != f.type:
            col = _cast(col, f.type)
        out_names.append(f.name)
        out_cols.append(col)
    core = set(CORE_SCHEMA.names)
    for name in table.column_names:
        if name not in core:
            out_names.append(name)
            out_cols.append(columns[name])
    return pa.table(out_cols, names=out_names)


def valid_utf8(col: pa.Array) -> pa.Array:
    """`col` with every invalid UTF-8 sequence in its text replaced by U+FFFD.

    pyarrow's JSON reader passes raw bytes through into string columns
    (its CSV reader does not); stored as is, such a value would break every
    later read of its column, so the JSON readers call this. Text columns
    (plain, dictionary or list of text) are checked in one pass each;
    other columns are returned as they are.
    """
    if pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type):
        fixed = valid_utf8(col.dictionary)
        return col if fixed is col.dictionary else pa.DictionaryArray.from_arrays(col.indices, fixed)
    if pa.types.is_list(col.type) and pa.types.is_string(col.type.value_type):
        flat = valid_utf8(col.values)
        return col if flat is col.values else pa.ListArray.from_arrays(col.offsets, flat, mask=col.is_null())
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return col
    try:
        col.validate(full=True)
        return col
    except pa.ArrowInvalid:
        as_bytes = col.cast(pa.binary()) if pa.types.is_string(col.type) else col.cast(pa.large_binary())
        return pa.array(
            [None if v is None else v.decode("utf-8", "replace") for v in as_bytes.to_pylist()], type=col.type
        )


def sensor_column(columns: dict[str, pa.Array], n: int, fallback: str) -> pa.Array:
    """The sensor of each of `n` rows (dictionary-encoded): a log's `sensor`
    or `_system_name` field, `fallback` where neither is set."""
    sensor: pa.Array = pa.nulls(n, pa.string())
    for name in SENSOR_COLUMNS:
        if name in columns:
            values = columns[name].cast(pa.string())
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
            sensor = pc.coalesce(sensor, values)
    return pc.fill_null(sensor, fallback).dictionary_encode()


def _cast(col: pa.Array, target: pa.DataType) -> pa.Array:
    if target == DICT_STRING:
        return col.cast(pa.string()).dictionary_encode()
    if pa.types.is_binary(target) and pa.types.is_string(col.type):
        return col.cast(pa.binary())
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(target)
