"""Reading a store: its snapshot, dates, ranges, days, and the inventory's error.

The inventory reads a store through one Snapshot per answer
(ingest.snapshot: the ledger read once, every file read verified); of
`ingest` it uses only that, the layout constants, the aggregate row
schemas and the error base.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from synack.ingest.errors import StoreError, SynackError
from synack.ingest.snapshot import Snapshot, StoreFS, locate, take_snapshot

DateLike = dt.date | dt.datetime | str | None
#: A store: its directory or URL (ledger beside a local store), a located
#: StoreFS (ingest.store_files), or a Snapshot of it (answers from that state).
StoreLike = Snapshot | StoreFS | Path | str

CONN_DIR = "conn"
_RELATIVE = re.compile(r"^(\d+)([dhw])$")
#: Dates a query accepts: records never lie outside (ingest sets such lines
#: aside), and a day's end stays representable.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class InventoryError(SynackError, ValueError):
    """A bad argument (date, network, allowlist line) or an unusable store."""


def store_files(store: StoreLike, ledger: Path | str | None = None) -> StoreFS:
    """Where the files and ledger of `store` are (`ledger`: default beside a
    local store); raises InventoryError for a URL that cannot be opened, or
    an object store given without its ledger."""
    if isinstance(store, Snapshot):
        return store.files
    try:
        return locate(store, ledger)
    except StoreError as err:
        raise InventoryError(str(err)) from None


def snapshot_of(store: StoreLike) -> Snapshot:
    """`store` as a Snapshot: itself when it is one, else its ledger read now
    (one read per call: a caller answering several questions from one state
    takes one and passes it). Raises InventoryError for no store or a
    ledger that cannot be used."""
    if isinstance(store, Snapshot):
        return store
    try:
        return take_snapshot(store_files(store))
    except StoreError as err:
        raise InventoryError(str(err)) from None


def as_timestamp(value: DateLike, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """A date, datetime, ISO string or relative age ("7d", "12h", "2w") ->
    an aware UTC datetime; None stays None.

    A date means its midnight UTC; a naive datetime is taken as UTC; a
    relative age counts back from `now` (default: the current time). Raises
    InventoryError for anything else, and for a time before 1970 or after
    the year 8999.
    """
    if value is None:
        return None
    given = value
    if isinstance(value, str):
        text = value.strip()
        m = _RELATIVE.match(text)
        if m:
            unit = {"d": "days", "h": "hours", "w": "weeks"}[m.group(2)]
            base = now or dt.datetime.now(dt.UTC)
            try:
                return _bounded(base - dt.timedelta(**{unit: int(m.group(1))}), value)
            except OverflowError:
                raise InventoryError(f"{value!r} reaches before 1970") from None
        try:
            value = dt.datetime.fromisoformat(text) if ("T" in text or " " in text) else dt.date.fromisoformat(text)
        except ValueError:
            raise InventoryError(f"not a date: {value!r} (use YYYY-MM-DD, an ISO time, or an age like 7d)") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return _bounded(value.astimezone(dt.UTC), given)


def _bounded(when: dt.datetime, given: object) -> dt.datetime:
    if not EARLIEST <= when < LATEST:
        raise InventoryError(f"{given!s} is outside the dates synack handles (1970-01-01 to 8999-12-31)")
    return when


def day_range(since: DateLike, until: DateLike) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The half-open [since, until) as UTC datetimes; raises InventoryError if empty."""
    start, end = as_timestamp(since), as_timestamp(until)
    if start is not None and end is not None and end <= start:
        raise InventoryError(f"empty range: until ({end:%Y-%m-%d %H:%M}) is not after since ({start:%Y-%m-%d %H:%M})")
    return start, end


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
