"""Reader for Zeek's JSON logs (`LogAscii::use_json=T`).

One flat object per line with dotted keys (`id.orig_h`); unset fields are
omitted (or null); `ts` is epoch seconds, epoch milliseconds
(`JSON::TS_MILLIS`) or ISO 8601 (`JSON::TS_ISO8601`); bytes that are not
valid UTF-8 are written as `\\xNN`. Types come from the known conn.log
fields (schema.CONN_FIELD_TYPES); other keys are inferred by pyarrow.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from synack.ingest import addresses
from synack.ingest.line_parsing import ParsedRows, RowRejects, parse_lines
from synack.ingest.normalize import valid_utf8
from synack.ingest.schema import CONN_FIELD_TYPES, TIMESTAMP, arrow_type
from synack.ingest.value_limits import REQUIRED_FIELDS, ValueLimits, reject_malformed, reject_unbelievable_times
from synack.ingest.zeek_ascii import float_seconds_to_timestamp
from synack.ingest.zeek_escapes import decode_escapes

#: Epoch values above this are milliseconds (year 5138 in seconds).
_MILLIS_THRESHOLD = 1e11


def _parse_type(zeek_type: str, name: str) -> pa.DataType:
    """Type the JSON parser reads a known field as, before decoding."""
    target = arrow_type(zeek_type, name)
    if pa.types.is_dictionary(target) or pa.types.is_binary(target):
        return pa.string()
    if pa.types.is_list(target) and pa.types.is_timestamp(target.value_type):
        return pa.list_(pa.float64())
    return target


# Time fields are left to inference: a number, or an ISO 8601 string that
# pyarrow recognizes as a timestamp, depending on the writer's settings.
_EXPLICIT = pa.schema([(name, _parse_type(t, name)) for name, t in CONN_FIELD_TYPES.items() if t != "time"])
_PARSE = pajson.ParseOptions(explicit_schema=_EXPLICIT, unexpected_field_behavior="infer", newlines_in_values=False)
_READ = pajson.ReadOptions(block_size=4 << 20)


def json_time(col: pa.Array) -> pa.Array:
    """Zeek JSON time values as pyarrow inferred them -> timestamp[us, UTC].

    Numbers are epoch seconds, or epoch milliseconds when above 1e11
    (`JSON::TS_MILLIS`); strings and timestamps are ISO 8601. Raises
    pa.ArrowInvalid for a value that is none of these.
    """
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        seconds = col.cast(pa.float64())
        millis = pc.greater(pc.abs(seconds), _MILLIS_THRESHOLD)
        seconds = pc.if_else(millis, pc.divide(seconds, 1000.0), seconds)
        return float_seconds_to_timestamp(seconds)
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), TIMESTAMP)
    if pa.types.is_timestamp(col.type) and col.type.tz is None:
        return col.cast(pa.timestamp("us")).cast(pa.int64()).cast(TIMESTAMP)
    return pc.cast(col, TIMESTAMP)


def _reason(err: Exception) -> str:
    msg = str(err).split("\n")[0]
    msg = re.sub(r"^JSON parse error: ", "invalid JSON: ", msg)
    return msg[:300]


def read_rows(
    data: bytes | memoryview, first_line: int, limits: ValueLimits | None = None, conn: bool = False
) -> ParsedRows:
    """Parse complete JSON lines `data` into tables with Zeek's field names
    and the normalized Arrow types; bad lines come back as Quarantined. With
    `conn`, a line whose conn-required field is unset is bad too."""
    checked = limits or ValueLimits()

    def parse_block(buf: pa.Buffer) -> tuple[pa.Table, np.ndarray | None]:
        table = pajson.read_json(pa.BufferReader(buf), read_options=_READ, parse_options=_PARSE)
        return _decode_columns(table, checked, conn)

    return parse_lines(data, first_line, parse_block, _reason)


def _decode_columns(table: pa.Table, limits: ValueLimits, conn: bool) -> tuple[pa.Table, np.ndarray | None]:
    rejects = RowRejects(len(table))
    # Columns of the explicit schema that no line had are all null: drop them.
    present = [
        name
        for name, col in zip(table.column_names, table.columns)
        if name not in CONN_FIELD_TYPES or col.null_count < len(col) or (conn and name in REQUIRED_FIELDS)
    ]
    table = table.select(present)
    columns = []
    for name, col in zip(table.column_names, table.columns):
        col = col.combine_chunks()
        ztype = CONN_FIELD_TYPES.get(name)
        target = arrow_type(ztype, name) if ztype else col.type
        if ztype is not None and pa.types.is_timestamp(target):
            col = json_time(col)
            if name == "ts":
                rejects.reject(pc.is_null(col), "ts: unset")
            reject_unbelievable_times(col, name, limits, rejects)
        elif ztype == "interval":
            # The ASCII writer prints intervals to the microsecond; match it.
            col = pc.round(col.cast(pa.float64()), 6)
        elif pa.types.is_binary(target):
            col, bad = decode_escapes(col, backslash_escapes=False, as_text=False)
            rejects.reject(bad, f"{name}: bad escape")
        elif pa.types.is_dictionary(target):
            encoded = col.dictionary_encode()
            values, _ = decode_escapes(encoded.dictionary, backslash_escapes=False)
            if ztype == "addr":
                values, invalid = addresses.canonical(values)
                rejects.reject(pc.take(invalid, encoded.indices), f"{name}: invalid address")
            col = pa.DictionaryArray.from_arrays(encoded.indices, values)
        elif pa.types.is_string(col.type):
            col, _ = decode_escapes(col, backslash_escapes=False)
        elif pa.types.is_list(col.type) and pa.types.is_string(col.type.value_type):
            flat, _ = decode_escapes(pc.list_flatten(col), backslash_escapes=False)
            col = pa.ListArray.from_arrays(col.offsets, flat, mask=pc.is_null(col))
        elif ztype is None and _awkward(col.type):
            col = as_json_text(col)
        columns.append(col)
    decoded = pa.table([valid_utf8(col) for col in columns], names=table.column_names)
    if conn:
        reject_malformed(decoded, rejects)
    return decoded, rejects.reasons


#: Deepest nesting of lists kept as Arrow lists; deeper values are kept as JSON text.
_MAX_LIST_DEPTH = 4


def _awkward(kind: pa.DataType, depth: int = 0) -> bool:
    """True for a type Parquet cannot hold or later reads may trip on: any
    object (Zeek's JSON writer flattens records, so only a foreign log has
    them, and an empty one has no Parquet form), or lists nested deeply."""
    if pa.types.is_struct(kind) or pa.types.is_map(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return depth >= _MAX_LIST_DEPTH or _awkward(kind.value_type, depth + 1)
    return False


def as_json_text(col: pa.Array) -> pa.Array:
    """A nested column as one JSON text per row (null stays null): stored
    faithfully, readable by any Parquet reader. Text stays as it is."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
    return pa.array([None if v is None else encode(v) for v in col.to_pylist()], pa.string())
