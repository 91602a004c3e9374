"""The daily report: what a team reads every morning, as data.

`build_report` gathers every section from the inventory functions for one
period (a day by default) and compares the headline with the 7 days before;
`write_report` writes the HTML page (see report_html), one CSV per table and
one JSON document, atomically, under names made from dates only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inventory import export
from inventory.allowlist import Allowed, load_allowlist
from inventory.client_ports import client_sightings, new_clients
from inventory.networks import DEFAULT_NETS
from inventory.server_ports import (
    Nets,
    Sensors,
    closed,
    gone_servers,
    hosts_serving,
    new_servers,
    server_sightings,
    servers,
)
from inventory.store_reader import InventoryError, as_timestamp

TOP = 20
HISTORY_DAYS = 30
COMPARE_DAYS = 7

#: Section name -> title, in report order.
SECTIONS = {
    "new_servers": "New server ports",
    "new_clients": "New client ports",
    "gone_servers": "Gone server ports",
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
    headline: dict[str, tuple[int, float]]  # name -> (this period, average of the previous 7 days)
    tables: dict[str, pd.DataFrame]
    new_per_day: list[tuple[str, int]]
    servers_per_service: list[tuple[str, int]]
    suppressed: int
    generated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def label(self) -> str:
        """The period as used in file names: YYYY-MM-DD, or FROM_TO."""
        last = self.end - dt.timedelta(microseconds=1)
        if self.end - self.start == dt.timedelta(days=1) and self.start.time() == dt.time(0):
            return f"{self.start:%Y-%m-%d}"
        return f"{self.start:%Y-%m-%d}_{last:%Y-%m-%d}"


def _period(day: dt.date | str | None, since: str | None, until: str | None, today: dt.date) -> tuple[
    dt.datetime, dt.datetime
]:  # fmt: skip
    if since is not None or until is not None:
        start = as_timestamp(since) if since is not None else None
        end = as_timestamp(until) if until is not None else None
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


@dataclass
class _Sightings:
    """All-time server and client ports, read once for every period asked."""

    servers: pd.DataFrame
    clients: pd.DataFrame


def _headline(store: Path | str, start: dt.datetime, end: dt.datetime, nets: Nets, sensors: Sensors,
              allowed: list[Allowed], seen: _Sightings) -> dict[str, int]:  # fmt: skip
    return {
        "new server ports": len(
            new_servers(store, start, end, allow=allowed, nets=nets, sensors=sensors, sightings=seen.servers)
        ),
        "new client ports": len(
            new_clients(store, start, end, allow=allowed, nets=nets, sensors=sensors, sightings=seen.clients)
        ),
        "gone server ports": len(gone_servers(store, end, nets=nets, sensors=sensors)),
        "hosts serving": len(hosts_serving(store, start, end, nets=nets, sensors=sensors)),
        "ports closed but probed": len(closed(store, start, end, nets=nets, sensors=sensors)),
    }


def build_report(
    store: Path | str,
    day: dt.date | str | None = None,
    *,
    since: str | None = None,
    until: str | None = None,
    nets: Nets = None,
    sensors: Sensors = None,
    allow: Path | str | None = None,
    idle_days: float = 7,
    today: dt.date | None = None,
) -> Report:
    """Gather the report of `day` (default: yesterday, UTC) or of [since, until).

    The headline holds, per figure, the value for the period and the average
    over the 7 periods of the same length before it. Raises InventoryError
    for a bad date, network or allowlist.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    start, end = _period(day, since, until, today)
    allowed = load_allowlist(allow)
    seen = _Sightings(
        server_sightings(store, nets=nets, sensors=sensors), client_sightings(store, nets=nets, sensors=sensors)
    )
    now = _headline(store, start, end, nets, sensors, allowed, seen)
    length = end - start
    before = [_headline(store, start - length * (i + 1), end - length * (i + 1), nets, sensors, allowed, seen)
              for i in range(COMPARE_DAYS)]  # fmt: skip
    headline = {k: (v, sum(b[k] for b in before) / COMPARE_DAYS) for k, v in now.items()}

    shown = new_servers(store, start, end, allow=allowed, show_allowed=True, nets=nets, sensors=sensors,
                        sightings=seen.servers)  # fmt: skip
    suppressed = int(shown["allowed"].sum()) if not shown.empty else 0
    period_servers = servers(store, start, end, nets=nets, sensors=sensors)
    top = period_servers
    if not top.empty:
        top = top.sort_values(["clients", "connections"], ascending=False, kind="stable").head(TOP)
        top = top[["server_h", "proto", "server_p", "port_name", "services", "connections", "clients", "server_reply"]]
    tables = {
        "new_servers": shown[~shown["allowed"].astype(bool)].drop(columns="allowed").reset_index(drop=True)
        if not shown.empty
        else new_servers(store, start, end, allow=allowed, nets=nets, sensors=sensors, sightings=seen.servers),
        "new_clients": new_clients(
            store, start, end, allow=allowed, nets=nets, sensors=sensors, sightings=seen.clients
        ),
        "gone_servers": gone_servers(store, end, idle_days=idle_days, nets=nets, sensors=sensors),
        "top_servers": top.reset_index(drop=True),
        "closed": closed(store, start, end, nets=nets, sensors=sensors).head(TOP),
    }
    history_start = end - dt.timedelta(days=HISTORY_DAYS)
    history = new_servers(store, history_start, end, nets=nets, sensors=sensors, sightings=seen.servers)
    counts = history.groupby(history["first_seen"].dt.strftime("%Y-%m-%d")).size() if not history.empty else {}
    days = [(history_start + dt.timedelta(days=i)).strftime("%Y-%m-%d") for i in range(HISTORY_DAYS)]
    new_per_day = [(d, int(counts.get(d, 0))) for d in days]
    per_service: dict[str, int] = {}
    for services, name in zip(period_servers.get("services", []), period_servers.get("port_name", [])):
        label = services or (f"{name} (port)" if name else "unknown")
        per_service[label] = per_service.get(label, 0) + 1
    return Report(
        start=start,
        end=end,
        sensors=[s for s in (sensors.split(",") if isinstance(sensors, str) else sensors or [])] or ["all"],
        nets=[nets] if isinstance(nets, str) else list(nets or DEFAULT_NETS),
        headline=headline,
        tables=tables,
        new_per_day=new_per_day,
        servers_per_service=sorted(per_service.items(), key=lambda kv: (-kv[1], kv[0]))[:12],
        suppressed=suppressed,
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def report_json(report: Report) -> dict[str, object]:
    """The report as one JSON-ready document."""
    return {
        "period": {"start": report.start.isoformat(), "end": report.end.isoformat()},
        "sensors": report.sensors,
        "networks": report.nets,
        "generated": report.generated.isoformat(timespec="seconds"),
        "headline": {k: {"value": v, "previous_7_average": round(avg, 2)} for k, (v, avg) in report.headline.items()},
        "allowlist_suppressed": report.suppressed,
        "new_server_ports_per_day": dict(report.new_per_day),
        "servers_per_service": dict(report.servers_per_service),
        **{name: export.records(df) for name, df in report.tables.items()},
    }


def write_report(report: Report, out_dir: Path | str) -> list[Path]:
    """Write report-LABEL.html, report-LABEL-SECTION.csv and report-LABEL.json
    into `out_dir` (created if needed); return the paths written."""
    from inventory.report_html import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = f"report-{report.label}"
    written = []
    html_path = out / f"{base}.html"
    _atomic_write(html_path, render_html(report))
    written.append(html_path)
    for name, df in report.tables.items():
        import io

        buf = io.StringIO()
        export.write_csv(df, buf)
        path = out / f"{base}-{name.replace('_', '-')}.csv"
        _atomic_write(path, buf.getvalue())
        written.append(path)
    json_path = out / f"{base}.json"
    _atomic_write(json_path, json.dumps(report_json(report), indent=1, ensure_ascii=False) + "\n")
    written.append(json_path)
    return written
