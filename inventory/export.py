"""Writing inventory DataFrames for machines: CSV, JSON, Parquet.

Everything in a result may come from the network (banners, service names),
so text output is made safe for its reader: server replies become
printable text with `\\xNN` escapes, and CSV cells that a spreadsheet would
run as a formula (leading = + - @, tab, carriage return) get a leading `'`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Each byte as it is shown: printable ASCII as itself, the rest (and the
#: backslash) as \\xNN. Applied with str.translate over a latin-1 decoding.
_SHOWN = str.maketrans({chr(b): chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in range(256)})


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
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column.dtype):
        times = pa.array(column)
        offset = "%Ez" if pa.types.is_timestamp(times.type) and times.type.tz else ""
        return pc.strftime(times, format=f"%Y-%m-%dT%H:%M:%S{offset}").to_pylist()  # type: ignore[no-any-return]
    values = column.astype(object).where(column.notna(), None).tolist()
    if any(isinstance(v, bytes) for v in values):
        return [printable(v) if isinstance(v, bytes) else v for v in values]
    return values


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame -> JSON-ready dicts (ISO times, printable replies)."""
    names = list(df.columns)
    return [dict(zip(names, row)) for row in zip(*(_values(df[name]) for name in names))]


def write_json(df: pd.DataFrame, out: IO[str]) -> None:
    """One JSON array of objects."""
    json.dump(records(df), out, ensure_ascii=False, indent=1)
    out.write("\n")


def write_csv(df: pd.DataFrame, out: IO[str]) -> None:
    """CSV with a header; text cells neutralized against formula injection."""
    cells = {
        name: [neutralize_formula(v) if isinstance(v, str) else v for v in _values(df[name])] for name in df.columns
    }
    pd.DataFrame(cells, columns=list(df.columns)).to_csv(out, index=False, lineterminator="\n")


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet keeps the real types (bytes, timestamps)."""
    df.to_parquet(path, index=False)
