"""Reading normalized records from a store's `conn/` partitions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ingest.schema import CORE_SCHEMA

DateLike = dt.date | dt.datetime | str | None


def as_timestamp(value: DateLike) -> dt.datetime | None:
    """A date, datetime or ISO string -> an aware UTC datetime (None stays None).

    A date means its midnight UTC; a naive datetime is taken as UTC. Raises
    ValueError for a string that is not ISO 8601.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def read_records(store: Path | str, columns: list[str], since: DateLike = None, until: DateLike = None) -> pa.Table:
    """Return the `columns` (core columns only) of the records with ts in [since, until)."""
    conn = Path(store) / "conn"
    schema = pa.schema([CORE_SCHEMA.field(c) for c in columns])
    if not conn.exists():
        return schema.empty_table()
    dataset = ds.dataset(conn, format="parquet", schema=schema, partitioning=None)
    expr = None
    start, end = as_timestamp(since), as_timestamp(until)
    if start is not None:
        expr = pc.field("ts") >= pa.scalar(start, CORE_SCHEMA.field("ts").type)
    if end is not None:
        upper = pc.field("ts") < pa.scalar(end, CORE_SCHEMA.field("ts").type)
        expr = upper if expr is None else expr & upper
    return dataset.to_table(columns=columns, filter=expr)
