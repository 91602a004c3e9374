"""Reading a store: dates, day partitions, the ledger's day generations.

The inventory reads the store as files (Parquet partitions, the SQLite
ledger opened read-only); of `ingest` it uses only the schema constants.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from ingest.schema import CORE_SCHEMA

DateLike = dt.date | dt.datetime | str | None

CONN_DIR = "conn"
DAILY_DIR = "daily"
LEDGER = "ledger.sqlite"
_RELATIVE = re.compile(r"^(\d+)([dhw])$")


class InventoryError(ValueError):
    """A bad argument (date, network, allowlist line) or an unusable store."""


def as_timestamp(value: DateLike, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """A date, datetime, ISO string or relative age ("7d", "12h", "2w") ->
    an aware UTC datetime; None stays None.

    A date means its midnight UTC; a naive datetime is taken as UTC; a
    relative age counts back from `now` (default: the current time). Raises
    InventoryError for anything else.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        m = _RELATIVE.match(text)
        if m:
            unit = {"d": "days", "h": "hours", "w": "weeks"}[m.group(2)]
            base = now or dt.datetime.now(dt.UTC)
            return base - dt.timedelta(**{unit: int(m.group(1))})
        try:
            value = dt.datetime.fromisoformat(text) if ("T" in text or " " in text) else dt.date.fromisoformat(text)
        except ValueError:
            raise InventoryError(f"not a date: {value!r} (use YYYY-MM-DD, an ISO time, or an age like 7d)") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def day_range(since: DateLike, until: DateLike) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The half-open [since, until) as UTC datetimes; raises InventoryError if empty."""
    start, end = as_timestamp(since), as_timestamp(until)
    if start is not None and end is not None and end <= start:
        raise InventoryError(f"empty range: until ({end:%Y-%m-%d %H:%M}) is not after since ({start:%Y-%m-%d %H:%M})")
    return start, end


def day_generations(store: Path) -> dict[str, int]:
    """Each day with records -> its generation (bumped by every commit to that day)."""
    path = Path(store) / LEDGER
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {day: gen for day, gen in db.execute("SELECT day, generation FROM days")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def days_between(days: list[str], start: dt.datetime | None, end: dt.datetime | None) -> list[str]:
    """The days (YYYY-MM-DD) of `days` that overlap [start, end)."""
    out = []
    for d in days:
        day_start = dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC)
        if start is not None and day_start + dt.timedelta(days=1) <= start:
            continue
        if end is not None and day_start >= end:
            continue
        out.append(d)
    return sorted(out)


def read_day_records(store: Path, day: str, columns: list[str]) -> pa.Table:
    """The `columns` (core columns) of every record of one day partition."""
    folder = Path(store) / CONN_DIR / f"date={day}"
    schema = pa.schema([CORE_SCHEMA.field(c) for c in columns])
    if not folder.exists():
        return schema.empty_table()
    return ds.dataset(folder, format="parquet", schema=schema).to_table(columns=columns)
