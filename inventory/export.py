"""Writing inventory DataFrames for machines: CSV, JSON, Parquet.

Everything in a result may come from the network (banners, service names),
so text output is made safe for its reader: server replies become
printable text with `\\xNN` escapes, and CSV cells that a spreadsheet would
run as a formula (leading = + - @, tab, carriage return) get a leading `'`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

import pandas as pd

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def printable(value: bytes | None) -> str:
    """Bytes -> text a terminal or a report can show: printable ASCII kept,
    everything else (and backslash) as \\xNN."""
    if value is None:
        return ""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in value)


def neutralize_formula(text: str) -> str:
    """Prefix a cell that a spreadsheet would evaluate with a `'`."""
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, bytes):
        return printable(value)
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame -> JSON-ready dicts (ISO times, printable replies)."""
    return [{k: _cell(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def write_json(df: pd.DataFrame, out: IO[str]) -> None:
    """One JSON array of objects."""
    json.dump(records(df), out, ensure_ascii=False, indent=1)
    out.write("\n")


def write_csv(df: pd.DataFrame, out: IO[str]) -> None:
    """CSV with a header; text cells neutralized against formula injection."""
    rows = pd.DataFrame(records(df), columns=list(df.columns))
    for column in rows.columns:
        rows[column] = rows[column].map(lambda v: neutralize_formula(v) if isinstance(v, str) else v)
    rows.to_csv(out, index=False, lineterminator="\n")


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet keeps the real types (bytes, timestamps)."""
    df.to_parquet(path, index=False)
