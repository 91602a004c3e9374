"""The daily report: what a team reads every morning, as data.

`build_report` gathers every section from an Inventory for one period (a
day by default), says first whether data arrived (per sensor, from the
ledger's per-day counts), and compares the headline with the 7 periods
before that had data. report_html renders the page; report_files writes
the page, the CSVs and the JSON (schema REPORT_SCHEMA).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synack.ingest import heap
from synack.inventory.address_bands import Band
from synack.inventory.allowlist import Allowed, allowed_mask
from synack.inventory.answer_stream import detached, sorted_frames
from synack.inventory.client_ports import first_clients
from synack.inventory.dailies import SERVERS, sensor_days
from synack.inventory.networks import DEFAULT_NETS
from synack.inventory.notices import first_notices
from synack.inventory.query_rows import Nets, Sensors
from synack.inventory.report_tables import Collapsing, ReportTable, spill_dir
from synack.inventory.server_ports import answering_all
from synack.inventory.store_inventory import Inventory
from synack.inventory.store_reader import DateLike, InventoryError, StoreLike, as_timestamp, snapshot_of

TOP = 20
HISTORY_DAYS = 30
COMPARE_DAYS = 7
#: Rows of a table shown on the page (the CSV holds them all).
MAX_ROWS = 50
#: The JSON document's schema: bumped when a field changes meaning or goes away.
REPORT_SCHEMA = "synack.report/2"
_DAY = dt.timedelta(days=1)


@dataclass
class SensorHealth:
    """One expected sensor's records in the period, and its newest record before the period's end."""

    sensor: str
    records: int
    last_record: dt.datetime | None


@dataclass
class DataHealth:
    """Did data arrive? Counted by UTC day from the ledger, so a period that
    cuts a day counts that whole day's records.

    `sensors` are the expected ones: those named with --sensor, else those
    seen in the comparison periods, plus any named with --expect-sensor.
    `baseline`: no record before the period (the first day of a store, or
    of the sensors asked for), so everything in it is new.
    """

    records: int
    newest: dt.datetime | None
    sensors: list[SensorHealth]
    baseline: bool
    new_sensors: list[str] = field(default_factory=list)  # first data in this period (their ports are all new)
    store_newest: dt.datetime | None = None  # the store's newest record, whenever it is (these sensors)

    @property
    def silent(self) -> list[SensorHealth]:
        """Expected sensors that sent nothing in the period."""
        return [s for s in self.sensors if s.records == 0]

    @property
    def ok(self) -> bool:
        return self.records > 0 and not self.silent

    def problems(self, end: dt.datetime) -> list[str]:
        """One sentence per problem, for the page's first lines and the command's summary."""
        lines = []
        if self.records == 0:
            lag = f", {age_text(end - self.newest)} before the period's end" if self.newest is not None else ""
            if self.newest is not None:
                newest = f"newest record: {self.newest:%Y-%m-%d %H:%M} UTC{lag}"
            elif self.store_newest is not None:
                newest = f"none before it; the store's newest record: {self.store_newest:%Y-%m-%d %H:%M} UTC"
            else:
                newest = "the store holds no records"
            lines.append(f"no data: no records in this period ({newest})")
        for s in self.silent if self.records else []:
            since = f"since {s.last_record:%Y-%m-%d %H:%M} UTC" if s.last_record is not None else "ever"
            lines.append(f"sensor {s.sensor or '(unnamed)'} sent no records in this period (none {since})")
        return lines


def age_text(delta: dt.timedelta) -> str:
    """A duration as hours, or days beyond two."""
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _health(day_rows: list[tuple[str, str, int, int]], start: dt.datetime, end: dt.datetime,
            sensors: list[str] | None, expect: list[str]) -> tuple[DataHealth, list[int]]:  # fmt: skip
    """The period's data health from the ledger's (day, sensor, records, newest µs)
    rows, and the records of each of the COMPARE_DAYS periods before it."""
    length = end - start
    wanted = set(sensors) if sensors is not None else None
    rows = [(dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC), s, n, t) for d, s, n, t in day_rows
            if wanted is None or s in wanted]  # fmt: skip

    def records(lo: dt.datetime, hi: dt.datetime) -> int:
        return sum(n for day, _, n, _ in rows if day < hi and day + _DAY > lo)

    # Per sensor in one pass (a store may hold 100,000 sensors): records in the period, newest record before its end.
    in_period: dict[str, int] = {}
    newest_us: dict[str, int] = {}
    for day, s, n, t in rows:
        if day < end:
            newest_us[s] = max(newest_us.get(s, t), t)
            if day + _DAY > start:
                in_period[s] = in_period.get(s, 0) + n

    def newest(times: Iterable[int]) -> dt.datetime | None:
        latest = max(times, default=None)
        return None if latest is None else min(dt.datetime.fromtimestamp(latest / 1e6, dt.UTC), end)

    earlier = {s for day, s, n, _ in rows if n and day + _DAY <= start}
    sending = {s for day, s, n, _ in rows if n and day < end and day + _DAY > start}
    window = start - length * COMPARE_DAYS
    expected = sorted(set(sensors or {s for day, s, _, _ in rows if window < day + _DAY and day < start}) | set(expect))
    health = DataHealth(
        records=records(start, end),
        newest=newest(newest_us.values()),
        sensors=[
            SensorHealth(s, in_period.get(s, 0), newest([newest_us[s]] if s in newest_us else [])) for s in expected
        ],  # fmt: skip
        baseline=not any(day < start for day, _, _, _ in rows) and records(start, end) > 0,
        new_sensors=sorted(sending - earlier) if earlier else [],
        store_newest=max((dt.datetime.fromtimestamp(t / 1e6, dt.UTC) for _, _, n, t in rows if n), default=None),
    )
    before = [records(start - length * (i + 1), end - length * (i + 1)) for i in range(COMPARE_DAYS)]
    return health, before


#: Section name -> title, in report order.
SECTIONS = {
    "new_servers": "New server ports",
    "new_clients": "New client ports",
    "gone_servers": "Gone server ports",
    "changed_ports": "Changed server ports (software or certificate)",
    "top_servers": "Top server ports by clients",
    "closed": "Closed ports most probed (scan targets)",
}


@dataclass
class Report:
    """Everything one report shows; DataFrames as the inventory returns them."""

    start: dt.datetime
    end: dt.datetime
    sensors: list[str]
    nets: list[str]
    headline: dict[str, tuple[int, float | None]]  # name -> (this period, average of earlier periods with data)
    compared: int  # how many of the COMPARE_DAYS periods before had data (the average's base)
    tables: dict[str, pd.DataFrame]
    new_per_day: list[tuple[str, int | None]]  # None: a day without records
    servers_per_service: list[tuple[str, int]]
    suppressed: int
    health: DataHealth
    suppressed_by: list[str] = field(default_factory=list)  # the allowlist entries that matched
    baseline_day: str | None = None  # the first day with data, when the chart shows it: all its ports are new
    answering_all: pd.DataFrame | None = None  # hosts that answered every port in the period (answering_all)
    max_rows: int = MAX_ROWS
    generated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: Every table by size (report_tables): `tables` holds their heads, these every row.
    stored: dict[str, ReportTable] = field(default_factory=dict)
    new_page: Collapsing | None = None  # the page's view of the new server ports, counted over every row
    spill: tempfile.TemporaryDirectory[str] | None = None  # where the large tables' rows are, while the report lives

    def rows(self, table: str) -> int:
        """How many rows a table has (its CSV's rows)."""
        return self.stored[table].rows if table in self.stored else len(self.tables[table])

    def frames(self, table: str) -> Iterator[pd.DataFrame]:
        """Every row of a table, a frame at a time (for its CSV and the JSON document)."""
        if table in self.stored:
            yield from self.stored[table].frames()
        else:
            yield self.tables[table]

    def page(self, table: str) -> tuple[pd.DataFrame, int]:
        """What the page shows of a table: at least its first `max_rows` rows
        (new server ports collapsed per host answering every port) and how many rows it has."""
        if table == "new_servers":
            if self.new_page is not None:
                return self.new_page.view(), self.new_page.total
            view = collapsed(self.tables[table])
            return view, len(view)
        return self.tables[table], self.rows(table)

    @property
    def period_unit(self) -> str:
        """What one comparison period is called in labels."""
        return "days" if self.end - self.start == _DAY else f"periods of {self.end - self.start}"

    def csv_name(self, table: str) -> str:
        """The file name of one table's CSV (a key of `tables`)."""
        return f"report-{self.label}-{table.replace('_', '-')}.csv"

    @property
    def label(self) -> str:
        """The period as used in file names: YYYY-MM-DD, or FROM_TO."""
        last = self.end - dt.timedelta(microseconds=1)
        if self.end - self.start == dt.timedelta(days=1) and self.start.time() == dt.time(0):
            return f"{self.start:%Y-%m-%d}"
        return f"{self.start:%Y-%m-%d}_{last:%Y-%m-%d}"


def _period(day: dt.date | str | None, since: str | None, until: str | None, today: dt.date,
            now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:  # fmt: skip
    """The report's [start, end): `day`, [since, until) (ages count back from
    `now`; until defaults to the start of `today`), or the day before `today`."""
    if since is not None or until is not None:
        start = as_timestamp(since, now=now) if since is not None else None
        end = as_timestamp(until, now=now) if until is not None else None
        if start is None:
            raise InventoryError("--until needs --since")
        end = end or dt.datetime.combine(today, dt.time(0), dt.UTC)
        if end <= start:
            raise InventoryError("empty range: --until is not after --since")
        return start, end
    if day is None:
        day = today - dt.timedelta(days=1)
    start = as_timestamp(day)
    assert start is not None
    return start, start + dt.timedelta(days=1)


def _first_seen(inv: Inventory, question: str, start: dt.datetime, end: dt.datetime) -> np.ndarray:
    """The first sightings (µs) of the ports `question` (new_servers or new_clients) finds in [start, end)."""
    if question == "new_clients":
        return inv.new_client_times(start, end)
    times = [f["first_seen"].to_numpy(dtype="datetime64[us]").astype(np.int64)
             for f in inv.frames(question, start, end, ordered=False) if len(f)]  # fmt: skip
    return np.sort(np.concatenate(times)) if times else np.zeros(0, dtype=np.int64)


def _within(times: np.ndarray, start: dt.datetime, end: dt.datetime) -> int:
    """How many of `times` (sorted µs) fall in [start, end)."""
    lo, hi = (np.datetime64(t.replace(tzinfo=None), "us").astype(np.int64) for t in (start, end))
    return int(np.searchsorted(times, hi, side="left") - np.searchsorted(times, lo, side="left"))


def _headline(inv: Inventory, start: dt.datetime, end: dt.datetime, gone: pd.DataFrame,
              new: tuple[int, int] | None = None) -> dict[str, int]:  # fmt: skip
    """The headline figures of [start, end); `gone` is its table of newly
    gone ports, `new` the new server and client ports when counted already."""
    count = lambda question: sum(len(f) for f in inv.frames(question, start, end, ordered=False))  # noqa: E731
    servers, clients = new if new is not None else (count("new_servers"), count("new_clients"))
    return {
        "new server ports": servers,
        "new client ports": clients,
        "gone server ports": len(gone),
        "hosts serving": len(inv.hosts_serving(start, end)),
        "ports closed but probed": len(inv.closed(start, end)),
    }


def build_report(
    store: Inventory | StoreLike,
    day: dt.date | str | None = None,
    *,
    since: str | None = None,
    until: str | None = None,
    nets: Nets = None,
    sensors: Sensors = None,
    allow: Path | str | None = None,
    idle_days: float = 7,
    today: dt.date | None = None,
    expect_sensors: list[str] | None = None,
    max_rows: int = MAX_ROWS,
    as_of: DateLike = None,
    strict: bool = False,
) -> Report:
    """Gather the report of `day` (default: yesterday, UTC: the day before
    `today`, by default the day of `as_of`, see Inventory) or of [since, until).

    `store` is an Inventory (its networks, sensors, allowlist, as_of and
    strictness are the report's; the keyword settings below are then
    ignored) or a store, with those settings as keywords.

    The headline holds, per figure, the value for the period and the average
    over those of the 7 periods of the same length before it that had data
    (None when none had). Gone server ports are those that crossed
    `idle_days` without records during the period. Raises InventoryError
    for a bad date, network or allowlist. `strict`: see Inventory.
    """
    if isinstance(store, Inventory):
        nets, sensors = store.nets, store.sensors
        inv = store.pinned()  # every table of the report from one state of the store
    else:
        inv = Inventory(snapshot_of(store), nets=nets, sensors=sensors, allow=allow, as_of=as_of, strict=strict)
    store = inv.snapshot()
    today = today or inv.as_of.date()
    start, end = _period(day, since, until, today, inv.as_of)
    allowed = inv.allowed
    sensor_list = [s.strip() for s in sensors.split(",") if s.strip()] if isinstance(sensors, str) else sensors
    day_rows = sensor_days(store)
    health, records_before = _health(day_rows, start, end, sensor_list or None, list(expect_sensors or []))
    data_days = _data_days(day_rows)

    def gone_in(lo: dt.datetime, hi: dt.datetime) -> pd.DataFrame:
        return _newly_gone(inv.gone_servers(hi, idle_days=idle_days), lo, hi, idle_days, data_days)

    gone = gone_in(start, end)
    length = end - start
    first_day = min((dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC) for d, s, n, _ in day_rows
                     if n and (not sensor_list or s in sensor_list)), default=None)  # fmt: skip
    periods = [
        (lo, hi) for i in range(COMPARE_DAYS) if records_before[i]
        for lo, hi in [(start - length * (i + 1), end - length * (i + 1))]
        if first_day is None or lo >= first_day + _DAY  # the baseline day: every port of it is "new"
    ]  # fmt: skip
    # The period's new client ports and those of the periods before, told new in one read of the history.
    inv.keep_new_client_ports(min([start, *(lo for lo, _ in periods)]), end)
    spill = spill_dir()
    period = _Period.of(inv, start, end, sensors, Path(spill.name), max_rows)
    new_clients = ReportTable.of(inv.frames("new_clients", start, end), Path(spill.name), "new_clients")
    now = _headline(inv, start, end, gone, (period.new.rows, new_clients.rows))
    # Each earlier period's new ports: one pass over the periods together, told apart by first_seen
    # (a port's first sighting lies in one period), not a pass per period.
    firsts = {q: _first_seen(inv, q, min(lo for lo, _ in periods), max(hi for _, hi in periods))
              for q in ("new_servers", "new_clients")} if periods else {}  # fmt: skip
    before = [_headline(inv, lo, hi, gone_in(lo, hi), (_within(firsts["new_servers"], lo, hi),
                                                       _within(firsts["new_clients"], lo, hi)))
              for lo, hi in periods]  # fmt: skip
    headline = {k: (v, sum(b[k] for b in before) / len(before) if before else None) for k, v in now.items()}

    history_start = end - dt.timedelta(days=HISTORY_DAYS)
    counts: dict[str, int] = {}
    for frame in inv.frames("new_servers", history_start, end, ordered=False):
        for day, n in frame.groupby(frame["first_seen"].dt.strftime("%Y-%m-%d")).size().items():
            counts[str(day)] = counts.get(str(day), 0) + int(n)
    days = [history_start + dt.timedelta(days=i) for i in range(HISTORY_DAYS)]
    with_data = {day for day, s, n, _ in day_rows if n and (not sensor_list or s in sensor_list)}
    new_per_day: list[tuple[str, int | None]] = [
        (d, counts.get(d, 0) if d in with_data else None) for d in (f"{day:%Y-%m-%d}" for day in days)
    ]
    stored = {
        "new_servers": period.new,
        "new_clients": new_clients,
        "gone_servers": ReportTable(gone, len(gone)),
        "changed_ports": _small(inv.changed_ports(start, end)),
        "top_servers": _small(period.top),
        "closed": _small(inv.closed(start, end).head(TOP)),
    }
    return Report(
        start=start,
        end=end,
        sensors=[s for s in (sensors.split(",") if isinstance(sensors, str) else sensors or [])] or ["all"],
        nets=[nets] if isinstance(nets, str) else list(nets or DEFAULT_NETS),
        headline=headline,
        compared=len(before),
        tables={name: table.head for name, table in stored.items()},
        new_per_day=new_per_day,
        servers_per_service=sorted(period.per_service.items(), key=lambda kv: (-kv[1], kv[0]))[:12],
        suppressed=period.suppressed,
        health=health,
        suppressed_by=[_entry_text(e) for i, e in enumerate(allowed) if i in period.matched],
        max_rows=max_rows,
        baseline_day=min(with_data) if with_data else None,
        answering_all=period.answering.reset_index(drop=True),
        stored=stored,
        new_page=period.page,
        spill=spill,
    )


def _small(df: pd.DataFrame) -> ReportTable:
    """A table small by construction (a top list, a day's changes), held whole."""
    return ReportTable(df.reset_index(drop=True), len(df))


@dataclass
class _Period:
    """What the report gathers from the period's server ports, a band of
    server addresses at a time (Inventory.bands): the new ports (explained,
    with the sensor's notices; sorted by first seen and held by size), the
    page's view of them, the busiest servers, the hosts answering every
    port, servers per service and what the allowlist suppressed."""

    new: ReportTable
    page: Collapsing
    top: pd.DataFrame
    answering: pd.DataFrame
    per_service: dict[str, int]
    suppressed: int
    matched: set[int]  # indices of the allowlist entries that matched a new port

    @classmethod
    def of(cls, inv: Inventory, start: dt.datetime, end: dt.datetime, sensors: Sensors, spill: Path,
           max_rows: int) -> _Period:  # fmt: skip
        """The period's figures from `inv`, its new ports' rows under `spill` when many; the page shows `max_rows`."""
        notices = inv.notices()
        tops: list[pd.DataFrame] = []
        answering: list[pd.DataFrame] = []
        per_service: dict[str, int] = {}
        suppressed = 0
        matched: set[int] = set()
        bands = inv.bands(SERVERS, start, end, lists=True)

        def explained_bands() -> Iterator[pd.DataFrame]:
            """Per band, its new ports explained; the other figures gathered on the way."""
            nonlocal suppressed
            for band in bands:
                servers = next(inv.frames("servers", start, end, bands=[band]))
                shown = next(inv.frames("new_servers", start, end, show_allowed=True, bands=[band], ordered=False))
                if not servers.empty:
                    top = servers.sort_values(["clients", "connections"], ascending=False, kind="stable").head(TOP)
                    tops.append(detached(top[_TOP_COLUMNS]))
                    answering.append(detached(answering_all(servers, inv.answers_all_ports)))
                for services, name in zip(servers.get("services", []), servers.get("port_name", [])):
                    label = services or (f"{name} (port)" if name else "unknown")
                    per_service[label] = per_service.get(label, 0) + 1
                allowed_rows = shown["allowed"].astype(bool)
                suppressed += int(allowed_rows.sum())
                if allowed_rows.any():
                    matched.update(i for i, e in enumerate(inv.allowed) if allowed_mask(shown[allowed_rows], [e]).any())
                new = shown[~allowed_rows].drop(columns="allowed").reset_index(drop=True)
                explained = _with_notices(_explained(new, servers, inv.snapshot(), start, end, sensors, band), notices)
                del servers, shown, new
                heap.give_back()
                yield explained

        frames = explained_bands()
        if len(bands) > 1:
            frames = sorted_frames(frames, ["first_seen", "server_h", "server_p"])
        page = Collapsing(limit=max_rows)
        new_table = ReportTable.of(_fed(frames, page), spill, "new_servers")
        top = pd.concat(tops, ignore_index=True) if tops else pd.DataFrame()
        if len(tops) > 1:
            top = top.sort_values(["clients", "connections"], ascending=False, kind="stable").head(TOP)
        flagged = pd.concat(answering, ignore_index=True) if answering else answering_all(pd.DataFrame())
        if len(answering) > 1:
            flagged = flagged.sort_values(["ports", "server_h"], ascending=[False, True], kind="stable")
        return cls(new_table, page, top.reset_index(drop=True), flagged, per_service, suppressed, matched)


_TOP_COLUMNS = ["server_h", "proto", "server_p", "port_name", "services", "connections", "clients", "server_reply"]


def _fed(frames: Iterable[pd.DataFrame], page: Collapsing) -> Iterator[pd.DataFrame]:
    """`frames`, each counted into `page` on the way."""
    for frame in frames:
        page.add(frame)
        yield frame


def collapsed(new: pd.DataFrame) -> pd.DataFrame:
    """The new-port table as the page shows it: the rows of each host that
    answers every port (`answers_all`) become one, whose `port` says how
    many TCP ports (the CSV and JSON keep every row); other rows get their
    `port` as PORT/PROTO. Without server_p/proto, which `port` replaces.
    (report_tables.Collapsing builds it frame by frame.)"""
    if new.empty or "answers_all" not in new:
        return new
    page = Collapsing()
    page.add(new)
    return page.view()


#: First clients named per new server port.
FIRST_CLIENTS = 3
_KEY = ["server_h", "proto", "server_p"]


def _explained(new: pd.DataFrame, period_servers: pd.DataFrame, store: StoreLike, start: dt.datetime,
               end: dt.datetime, sensors: Sensors, band: Band = None) -> pd.DataFrame:  # fmt: skip
    """New server ports (of one band of server addresses, when given) with
    what explains them: `first_clients` (the first FIRST_CLIENTS to connect,
    earliest first, from anywhere) and `connections` (in the period, since
    it was first seen)."""
    if new.empty:
        return new.assign(first_clients=pd.Series(dtype=object), connections=pd.Series(dtype="int64"))
    first = first_clients(store, start, end, new[_KEY], sensors, band, FIRST_CLIENTS)
    counts = period_servers[[*_KEY, "connections"]] if not period_servers.empty else None
    out = new.merge(first, on=_KEY, how="left")
    out["first_clients"] = out["first_clients"].fillna("")
    if counts is not None:
        out = out.merge(counts, on=_KEY, how="left")
    out["connections"] = out.get("connections", pd.Series(0, index=out.index)).fillna(0).astype("int64")
    return out


def _with_notices(new: pd.DataFrame, notices: pd.DataFrame) -> pd.DataFrame:
    """New server ports with `notice_ts` beside `first_seen`: when the sensor
    itself first raised a notice for the port (notice.zeek), NaT when it did not."""
    first = first_notices(notices).astype({"server_p": new["server_p"].dtype})
    out = new.merge(first, on=_KEY, how="left")
    at = list(new.columns).index("first_seen") + 1
    out.insert(at, "notice_ts", out.pop("notice_ts").astype("datetime64[us, UTC]"))
    return out


def _data_days(day_rows: list[tuple[str, str, int, int]]) -> dict[str, np.ndarray]:
    """Per sensor, the sorted day numbers (days since the epoch) on which it sent records."""
    days: dict[str, list[int]] = {}
    for day, sensor, rows, _ in day_rows:
        if rows:
            days.setdefault(sensor, []).append(dt.date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL)
    return {sensor: np.array(sorted(d), dtype=np.int64) for sensor, d in days.items()}


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _newly_gone(gone: pd.DataFrame, start: dt.datetime, end: dt.datetime, idle_days: float,
                data_days: dict[str, np.ndarray]) -> pd.DataFrame:  # fmt: skip
    """The ports of `gone` (idle by the wall clock at `end`) that crossed
    `idle_days` of idle time during [start, end), counting idle time only
    while one of their sensors sent data: the whole days between the last
    sighting and a moment on which none of its sensors sent records are
    not counted, so a stalled sensor does not make its ports gone. Each
    port is reported once, in the period in which it crosses."""
    if gone.empty:
        return gone
    first = (gone["last_seen"].dt.floor("D") - pd.Timestamp(0, tz="UTC")).dt.days.to_numpy() + 1

    def active_idle(at: dt.datetime) -> np.ndarray:
        wall = (pd.Timestamp(at) - gone["last_seen"]).dt.total_seconds().to_numpy() / 86400
        last = (pd.Timestamp(at) - pd.Timedelta(microseconds=1)).floor("D").value // 86_400_000_000_000
        span = np.maximum(last - first, 0)  # whole days strictly between the last sighting's and `at`'s
        with_data = np.zeros(len(gone), dtype=np.int64)
        for sensors, rows in gone.groupby(gone["sensors"].fillna("")).indices.items():
            days = np.unique(np.concatenate([data_days.get(s, np.zeros(0, np.int64)) for s in sensors.split(",")]))
            lo, hi = first[rows], np.maximum(first[rows], last)
            with_data[rows] = np.searchsorted(days, hi, "left") - np.searchsorted(days, lo, "left")
        return wall - (span - with_data)

    crossed = (active_idle(end) >= idle_days) & (active_idle(start) < idle_days)
    return gone[crossed].reset_index(drop=True)


def _matching_entries(allowed_rows: pd.DataFrame, entries: list[Allowed]) -> list[str]:
    """The allowlist entries (as written) that matched at least one of `allowed_rows`."""
    if allowed_rows.empty:
        return []
    return [_entry_text(e) for e in entries if allowed_mask(allowed_rows, [e]).any()]


def _entry_text(entry: Allowed) -> str:
    ports = ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in entry.ports)
    return f"{entry.net} {entry.proto} {ports}" + (f"  # {entry.comment}" if entry.comment else "")
