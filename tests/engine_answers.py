"""Helpers shared by the engine and object-storage tests: generated logs,
and every query's answer as text, to compare two stores byte for byte."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from typer.testing import CliRunner

from bench.conn_gen import conn_table, header
from synack.cli import app

runner = CliRunner()


def generated_logs(folder: Path) -> Path:
    """Four days (2026-11-18 to 21), two sensors, plain and gzipped logs, several chunks each, one log twice."""
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    for day in range(3):
        for n, sensor in enumerate(("edge-1", "core-2")):
            table = conn_table(6_000, seed=day * 10 + n, start=1795000000.0 + day * 86400, span=80000.0)
            table = table.set_column(table.schema.get_field_index("sensor"), "sensor",
                                     pa.array([sensor] * len(table)))  # fmt: skip
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, options)
            data = header(f"2026-11-{21 + day}-00-00-00") + sink.getvalue().to_pybytes() + b"#close\tx\n"
            path = folder / f"2026-11-{21 + day}" / f"conn.{sensor}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            if n:
                path.with_suffix(".log.gz").write_bytes(gzip.compress(data))
            else:
                path.write_bytes(data)
    # The same log under a second name (as the live conn.log and its archive):
    # one source, read once, whichever task reaches it first.
    again = folder / "archive" / "conn.edge-1.again.log.gz"
    again.parent.mkdir()
    again.write_bytes(gzip.compress((folder / "2026-11-21" / "conn.edge-1.log").read_bytes()))
    return folder


def answers(store: Path | str, since: str, until: str, *, ledger: Path | None = None,
            reports: Path | None = None) -> dict[str, str]:  # fmt: skip
    """Every query's output as text (the report's JSON without its generation
    time) of the store at `store` (a directory, or a URL with its `ledger`);
    the report is written to `reports` (default: beside a local store)."""
    out: dict[str, str] = {}
    located = ["--store", str(store), *(["--ledger", str(ledger)] if ledger is not None else [])]
    common = [*located, "--nets", "all"]
    for name, args in {
        "servers": ["servers", "-f", "csv"],
        "clients": ["clients", "--detail", "-f", "csv"],
        "closed": ["closed", "-f", "csv"],
        "new-ports": ["new-ports", "--since", since, "--until", until, "-f", "csv"],
        "gone-ports": ["gone-ports", "--idle-days", "1", "-f", "csv", "--as-of", "newest"],
        "status": ["status", "--json"],
    }.items():
        result = runner.invoke(app, [*args, *(common if name != "status" else located)])
        assert result.exit_code == 0, result.output
        out[name] = result.output
    status = json.loads(out["status"])
    status.pop("last_ingest")
    status["settings"].pop("as_of")
    status["store"] = ""
    out["status"] = json.dumps(status, sort_keys=True)
    if reports is None:
        reports = Path(store).parent / f"{Path(store).name}-report"
    reports.mkdir(exist_ok=True)
    result = runner.invoke(app, ["report", *common, "--since", since, "--until", until, "-o", str(reports)])
    assert result.exit_code in (0, 1), result.output
    for path in sorted(reports.iterdir()):
        text = path.read_text()
        if path.suffix == ".json":
            doc = json.loads(text)
            doc.pop("generated")
            text = json.dumps(doc, sort_keys=True)
        if path.suffix != ".html":
            out[path.name] = text
    return out
