"""Writing inventory DataFrames for machines: CSV, JSON, Parquet.

Everything in a result may come from the network (banners, service names),
so text output is made safe for its reader: server replies become
printable text with `\\xNN` escapes, and CSV cells that a spreadsheet would
run as a formula (leading = + - @, tab, carriage return) get a leading `'`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from synack.ingest.file_modes import FILE, mode_to_keep, open_new
from synack.ingest.visible import string_bytes, visible, visible_array

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Each byte as it is shown: printable ASCII as itself, the rest (and the
#: backslash) as \\xNN. Applied with str.translate over a latin-1 decoding.
_SHOWN = str.maketrans({chr(b): chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in range(256)})
#: The same prefixes as a regular expression (one character class) for Arrow.
_FORMULA_PATTERN = "^[" + "".join("\\" + c if c in "-\\^]" else c for c in _FORMULA_PREFIXES) + "]"
#: Rows converted at once for CSV and JSON output: memory stays flat.
_BATCH = 25_000


_US_PER_DAY = 86_400_000_000
_EPOCH = dt.date(1970, 1, 1)
#: One ISO 8601 time as fixed-width byte fields: each filled for a whole
#: column at once by indexing a table of its texts.
_ISO_FIELDS = [("date", "S10"), ("t", "S1"), ("clock", "S8"), ("dot", "S1"), ("milli", "S3"), ("micro", "S3")]
_ISO = {False: np.dtype(_ISO_FIELDS), True: np.dtype([*_ISO_FIELDS, ("zone", "S6")])}


@cache
def _clock_texts() -> tuple[np.ndarray, np.ndarray]:
    """("HH:MM:SS" of each second of a day, "000".."999"), as fixed-width bytes."""
    three = np.array([b"%03d" % i for i in range(1000)], dtype="S3")
    seconds = np.arange(86_400)
    two = three.view(np.uint8).reshape(1000, 3)[:100, 1:]  # "00".."99"
    clock = np.full((86_400, 8), ord(":"), dtype=np.uint8)
    for at, value in ((0, seconds // 3600), (3, seconds // 60 % 60), (6, seconds % 60)):
        clock[:, at : at + 2] = two[value]
    return clock.view("S8").reshape(-1), three


def iso_times(values: pa.Array) -> pa.Array:
    """Timestamps[us] as ISO 8601 text, "YYYY-MM-DDTHH:MM:SS.ffffff" and
    "+00:00" when zoned (stored times are UTC). Built as fixed-width byte
    records with numpy (Arrow's strftime takes over a microsecond a
    value): each part indexed from a table of its texts (the days the
    values span, the seconds of a day, three digits)."""
    values = values.cast(pa.timestamp("us", values.type.tz), safe=False)
    zoned = bool(values.type.tz)
    micros = pc.fill_null(values.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    n = len(micros)
    days, rest = np.divmod(micros, _US_PER_DAY)
    first = int(days.min()) if n else 0
    span = int(days.max()) - first + 1 if n else 0
    if (
        span > 100_000
        or first < (dt.date(1, 1, 1) - _EPOCH).days
        or first + span > (dt.date(9999, 12, 31) - _EPOCH).days
    ):
        return pc.strftime(values, format="%Y-%m-%dT%H:%M:%S" + ("%Ez" if zoned else ""))
    calendar = np.array([(_EPOCH + dt.timedelta(days=first + i)).isoformat() for i in range(span)], dtype="S10")
    clock, three = _clock_texts()
    seconds, micro = np.divmod(rest, 1_000_000)
    text = np.empty(n, dtype=_ISO[zoned])
    text["date"], text["t"], text["clock"], text["dot"] = calendar[days - first], b"T", clock[seconds], b"."
    text["milli"], text["micro"] = three[micro // 1000], three[micro % 1000]
    if zoned:
        text["zone"] = b"+00:00"
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32) * _ISO[zoned].itemsize)
    array = pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text.view(np.uint8)))
    return array if values.null_count == 0 else pc.if_else(pc.is_valid(values), array, pa.scalar(None, pa.string()))


_FORMULA_BYTES = np.array([ord(c) for c in _FORMULA_PREFIXES], dtype=np.uint8)


def _formula_heads(values: pa.Array) -> bool:
    """Whether some value of a string array starts like a formula (one of
    _FORMULA_PREFIXES): its first bytes looked up at once."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    offsets, data = string_bytes(values)
    starts = (offsets[:-1] - offsets[0])[np.diff(offsets) > 0]
    return bool(np.isin(data[starts], _FORMULA_BYTES).any())


def printable(value: bytes | None) -> str:
    """Bytes -> text a terminal or a report can show: printable ASCII kept,
    everything else (and backslash) as \\xNN."""
    if value is None:
        return ""
    return value.decode("latin-1").translate(_SHOWN)


def neutralize_formula(text: str) -> str:
    """Prefix a cell that a spreadsheet would evaluate with a `'`."""
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _values(column: pd.Series) -> list[Any]:
    """One column as JSON-ready Python values, converted column-wise: times
    as ISO 8601 with microseconds and offset, bytes printable, numpy
    scalars as Python ones, missing values as None."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return iso_times(pa.array(column, from_pandas=True)).to_pylist()  # type: ignore[no-any-return]
    values = column.astype(object).where(column.notna(), None).tolist()
    return [printable(v) if isinstance(v, bytes) else visible(v) if isinstance(v, str) else v for v in values]


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame -> JSON-ready dicts (ISO times, printable replies)."""
    names = list(df.columns)
    return [dict(zip(names, row)) for row in zip(*(_values(df[name]) for name in names))]


def write_json_rows(frames: Iterable[pd.DataFrame], out: IO[str], lead: str) -> int:
    """Write the rows of `frames` to `out` as JSON objects, each preceded by
    `lead` but for the first one, whose `lead` loses its first character (a
    separator: ",\n" gives "\n" before the first row, "\n" nothing).
    Returns the rows written."""
    rows, first = 0, True
    for frame in frames:
        for text in _json_rows(frame, lead):
            out.write(text[1:] if first else text)
            first = False
        rows += len(frame)
    return rows


def _json_rows(df: pd.DataFrame, lead: str) -> Iterator[str]:
    """The rows of `df` as JSON objects (what the C encoder writes for
    `records`), each preceded by `lead`, _BATCH rows to a text. Built
    column-wise with Arrow's string kernels: text made `visible`, then
    JSON-escaped (after `visible` only the quote and the backslash need
    it); only columns of other values (floats, bytes, mixed objects) go
    through Python, value by value."""
    heads = [json.dumps(str(name), ensure_ascii=False) + ": " for name in df.columns]
    for start in range(0, len(df), _BATCH):
        part = df.iloc[start : start + _BATCH]
        pieces: list[pa.Array | str] = [lead + "{"]
        for i, name in enumerate(part.columns):
            pieces += [(", " if i else "") + heads[i], _json_texts(part[name])]
        pieces.append("}")
        if len(pieces) == 2:  # no columns: a scalar for every row
            pieces.insert(1, pa.array([""] * len(part), pa.large_string()))
        text = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in [*pieces, ""]]
        yield _concatenated(pc.binary_join_element_wise(*text))


def _json_texts(column: pd.Series) -> pa.Array:
    """Each value of `column` as JSON text ("null" when missing), as `records` and json make it."""
    dtype = column.dtype
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        array = None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array is not None and pd.api.types.is_datetime64_any_dtype(dtype):
        texts = _quoted(iso_times(array))
    elif array is not None and (pa.types.is_integer(array.type) or pa.types.is_null(array.type)):
        texts = array.cast(pa.string())
    elif array is not None and pa.types.is_boolean(array.type):
        texts = pc.if_else(array, "true", "false")
    elif array is not None and (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        escaped = pc.replace_substring(pc.replace_substring(visible_array(array), "\\", "\\\\"), '"', '\\"')
        texts = _quoted(escaped)
    else:
        encode = json.JSONEncoder(ensure_ascii=False).encode
        return pa.array([encode(v) for v in _values(column)], pa.large_string())
    return pc.fill_null(texts.cast(pa.large_string()), "null")


def _quoted(texts: pa.Array) -> pa.Array:
    """Each text between double quotes (large_string)."""
    quote, nothing = pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(quote, texts.cast(pa.large_string()), quote, nothing)


def _concatenated(texts: pa.Array) -> str:
    """The values of a large_string array (no nulls) one after another, as one str."""
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + len(texts) + 1]
    data = texts.buffers()[2]
    if data is None or not len(texts):
        return ""
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])].tobytes().decode("utf-8")


def write_json(df: pd.DataFrame | Iterable[pd.DataFrame], out: IO[str]) -> int:
    """One JSON array of objects, an object a line (so `grep` and `head`
    work on it), each encoded by the C encoder (indentation would make the
    stdlib fall back to its Python encoder, several times slower). `df`
    may be an answer's frames, written one after another. Returns the rows written."""
    out.write("[")
    rows = write_json_rows(_frames(df), out, ",\n")
    out.write("\n]\n")
    return rows


def _frames(df: pd.DataFrame | Iterable[pd.DataFrame]) -> Iterable[pd.DataFrame]:
    """One DataFrame, or an answer's frames, as frames."""
    return [df] if isinstance(df, pd.DataFrame) else df


def write_jsonl(df: pd.DataFrame | Iterable[pd.DataFrame], out: IO[str]) -> int:
    """JSON lines: one JSON object a line, nothing else (for jq, log
    shippers and streaming readers); `df` may be an answer's frames.
    Returns the rows written."""
    rows = write_json_rows(_frames(df), out, "\n")  # a newline after each row, none before the first
    if rows:
        out.write("\n")
    return rows


def write_csv(df: pd.DataFrame | Iterable[pd.DataFrame], out: IO[str]) -> int:
    """CSV with a header; text cells neutralized against formula injection;
    `df` may be an answer's frames (one header, their rows one after
    another). Returns the rows written.

    Converted and written by Arrow, column by column, in batches: millions
    of rows take seconds, not minutes.
    """
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    rows = 0
    for i, frame in enumerate(_frames(df)):
        if i == 0:
            csv.writer(out, lineterminator="\n").writerow([str(c) for c in frame.columns])
        for start in range(0, len(frame), _BATCH):
            table = csv_table(frame.iloc[start : start + _BATCH])
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, options)
            out.write(sink.getvalue().to_pybytes().decode("utf-8"))
        rows += len(frame)
    return rows


def csv_table(df: pd.DataFrame) -> pa.Table:
    """`df` as an Arrow table of CSV-safe cells: times in ISO 8601, bytes
    printable, text that a spreadsheet would run as a formula prefixed
    with `'`."""
    columns = {}
    for name in df.columns:
        values = pa.array(df[name], from_pandas=True)
        if pa.types.is_timestamp(values.type):
            values = iso_times(values)
        elif pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
            encoded = values.dictionary_encode()
            shown = pa.array([printable(v) for v in encoded.dictionary.to_pylist()], pa.string())
            values = pc.take(shown, encoded.indices)
        if pa.types.is_large_string(values.type):
            values = values.cast(pa.string())
        if pa.types.is_string(values.type):
            values = visible_array(values)
            if _formula_heads(values):
                formula = pc.fill_null(pc.match_substring_regex(values, _FORMULA_PATTERN), False)
                values = pc.if_else(formula, pc.binary_join_element_wise("'", values, ""), values)
        columns[str(name)] = values
    return pa.table(columns)


#: The Arrow type of every column an answer can have that is not plain
#: text: a column has its type whatever the data (an answer without replies
#: still writes `server_reply` as binary), so daily exports concatenate.
COLUMN_TYPES: dict[str, pa.DataType] = {
    **{c: pa.int64() for c in ("server_p", "connections", "clients", "servers", "probes", "ports", "quiet_ports",
                               "lowest_port", "highest_port")},
    **{c: pa.timestamp("us", tz="UTC") for c in ("first_seen", "last_seen", "notice_ts", "ts")},
    **{c: pa.bool_() for c in ("synack_seen", "answers_all", "allowed", "also_served")},
    "idle_days": pa.float64(),
    "server_reply": pa.binary(),
}  # fmt: skip


def write_parquet(df: pd.DataFrame | Iterable[pd.DataFrame], path: Path | IO[bytes]) -> int:
    """Parquet keeps the real types (bytes, timestamps), each column of
    COLUMN_TYPES with its type whatever the rows hold; other columns text
    (arrow_table). `df` may be an answer's frames: a row group or more
    each. Returns the rows written."""
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for frame in _frames(df):
            table = arrow_table(frame)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(table.cast(schema))
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    return rows


def arrow_table(df: pd.DataFrame) -> pa.Table:
    """`df` as an Arrow table: each column of COLUMN_TYPES with its type
    whatever the rows hold (an answer without replies still has
    `server_reply` as binary), other columns text, lists as they are."""
    df = df.copy(deep=False)
    df.attrs = {}  # what the answer covers is for the caller, not the file's pandas metadata
    table = pa.Table.from_pandas(df, preserve_index=False)
    columns = []
    for name, column in zip(table.column_names, table.columns):
        wanted = COLUMN_TYPES.get(name, pa.string())
        try:
            columns.append(column.cast(wanted))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            columns.append(column)  # a column of another kind (a list): as pandas has it
    return pa.table(columns, names=table.column_names)


@contextmanager
def replacing(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write that replaces `path` only once it is whole.

    It is a temporary file beside `path`, fsynced and renamed over it when
    the block ends without an exception (a reader never sees half a file, a
    failed write leaves the old file) and removed otherwise. Raises
    IsADirectoryError when `path` is a directory, OSError when it cannot
    be written (FileNotFoundError: no such directory), named by `path`.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            fd = open_new(tmp, FILE)
        except OSError as err:  # named by the file it replaces, not its temporary
            raise OSError(err.errno, err.strerror, str(path)) from None
        if path.exists():
            os.fchmod(fd, mode_to_keep(path))  # the replaced file's mode, whatever the umask would take
        with open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
