"""The report's files: the HTML page, one CSV per table and the JSON document.

`write_report` writes them atomically (a temporary file renamed into
place) under names made from dates only. The data come from
daily_report, the page from report_html; this module joins the two, so
neither imports the other's writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from synack.ingest.file_modes import make_dirs
from synack.inventory import export
from synack.inventory.daily_report import REPORT_SCHEMA, Report
from synack.inventory.report_html import render_html


def _atomic_write(path: Path, text: str) -> None:
    with export.replacing(path) as f:
        f.write(text)


def report_json(report: Report, tables: bool = True) -> dict[str, object]:
    """The report as one JSON-ready document (without its tables' rows
    unless `tables`: write_report streams them into the file)."""
    health = report.health
    return {
        "schema": REPORT_SCHEMA,
        "period": {"start": report.start.isoformat(), "end": report.end.isoformat()},
        "health": {
            "ok": health.ok,
            "records": health.records,
            "newest_record": health.newest.isoformat() if health.newest is not None else None,
            "lag_seconds": (report.end - health.newest).total_seconds() if health.newest is not None else None,
            "baseline": health.baseline,
            "new_sensors": health.new_sensors,
            "sensors": [
                {
                    "sensor": s.sensor,
                    "records": s.records,
                    "last_record": s.last_record.isoformat() if s.last_record is not None else None,
                }
                for s in health.sensors
            ],  # fmt: skip
            "problems": health.problems(report.end),
        },
        "compared_periods": report.compared,
        "sensors": report.sensors,
        "networks": report.nets,
        "generated": report.generated.isoformat(timespec="seconds"),
        "headline": {
            k: {"value": v, "previous_average": round(avg, 2) if avg is not None else None}
            for k, (v, avg) in report.headline.items()
        },
        "allowlist_suppressed": report.suppressed,
        "allowlist_entries_matched": report.suppressed_by,
        "new_server_ports_per_day": dict(report.new_per_day),
        "servers_per_service": dict(report.servers_per_service),
        **({name: [r for frame in report.frames(name) for r in export.records(frame)] for name in report.tables}
           if tables else {}),
    }  # fmt: skip


def write_report(report: Report, out_dir: Path | str) -> list[Path]:
    """Write report-LABEL.html, report-LABEL-SECTION.csv and report-LABEL.json
    into `out_dir` (created if needed); return the paths written."""
    out = Path(out_dir)
    make_dirs(out)
    base = f"report-{report.label}"
    written = []
    html_path = out / f"{base}.html"
    _atomic_write(html_path, render_html(report))
    written.append(html_path)
    for name in report.tables:
        path = out / report.csv_name(name)
        with export.replacing(path) as f:
            export.write_csv(report.frames(name), f)
        written.append(path)
    json_path = out / f"{base}.json"
    with export.replacing(json_path) as f:
        _write_json(report, f)
    written.append(json_path)
    return written


def _write_json(report: Report, out: IO[str]) -> None:
    """The JSON document (report_json) with each table's rows written a frame at a time."""
    document = json.dumps(report_json(report, tables=False), indent=1, ensure_ascii=False)
    out.write(document[: document.rindex("}")].rstrip())
    encode = json.JSONEncoder(ensure_ascii=False).encode
    for name in report.tables:
        out.write(f",\n {encode(name)}: [")
        rows = export.write_json_rows(report.frames(name), out, ",\n  ")
        out.write("\n ]" if rows else "]")
    out.write("\n}\n")
