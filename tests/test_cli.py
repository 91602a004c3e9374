"""The command line: thin, helpful, one-line errors and non-zero exits."""

from __future__ import annotations

import csv
import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.store import LEDGER_VERSION
from tests.conftest import conn_line

runner = CliRunner()


def commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert len(result.output.strip().splitlines()) > 3


def test_ingest_prints_a_one_line_summary(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    log = make_conn_log("conn.log", [conn_line("A"), conn_line("B")])
    result = runner.invoke(app, ["ingest", str(log), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "ingested 1 file:" in result.stdout and "2 rows" in result.stdout and "rows/s" in result.stdout


def test_store_from_environment(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    log = make_conn_log("conn.log", [conn_line("A")])
    result = runner.invoke(app, ["ingest", str(log)], env={"SYNACK_STORE": str(tmp_path / "env-store")})
    assert result.exit_code == 0
    assert (tmp_path / "env-store" / "ledger.sqlite").exists()


def test_store_from_synack_toml(
    tmp_path: Path, make_conn_log: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_conn_log("conn.log", [conn_line("A")])
    (tmp_path / "synack.toml").write_text(f'store = "{tmp_path / "toml-store"}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNACK_STORE", raising=False)
    result = runner.invoke(app, ["ingest", str(log)])
    assert result.exit_code == 0
    assert (tmp_path / "toml-store" / "ledger.sqlite").exists()


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: p / "missing.log", "no such file or directory"),
        (lambda p: (p / "junk.log").write_text("junk\n") and p / "junk.log", "not a Zeek log"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, make_input: Callable[[Path], Path], message: str) -> None:
    path = make_input(tmp_path)
    result = runner.invoke(app, ["ingest", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.output


def test_locked_store_is_one_line(tmp_path: Path, make_conn_log: Callable[..., Path]) -> None:
    from synack.ingest.store import Store

    log = make_conn_log("conn.log", [conn_line("A")])
    with Store.open(tmp_path / "s"):
        result = runner.invoke(app, ["ingest", str(log), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: store") and "in use" in result.stderr


@pytest.mark.skipif(shutil.which("synack") is None, reason="console script not installed")
def test_demo_runs_from_any_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SYNACK_STORE"}
    result = subprocess.run(["synack", "demo"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "New server ports on 2026-11-21" in result.stdout
    assert "10.1.0.11" in result.stdout and "8443/tcp" in result.stdout
    assert list(tmp_path.iterdir()) == []  # the demo's store was temporary


def test_module_runs_without_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from synack.cli import app; app()", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )
    assert result.returncode == 0 and "ingest" in result.stdout


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synack.samples.generate import OUT

    store = tmp_path_factory.mktemp("cli") / "store"
    result = runner.invoke(app, ["ingest", str(OUT), "--store", str(store), "-q"])
    assert result.exit_code == 0, result.output
    return store


def test_a_query_loads_no_more_than_it_needs(sample_store: Path) -> None:
    """Start-up is part of every query's time: a query imports neither the
    ingest pipeline, its watcher, its progress bar nor pydantic (typer 0.29
    builds a pydantic adapter per option on each run, which cost 0.3 s)."""
    probe = (
        "import sys\nfrom synack.cli import app\n"
        "try:\n    app(['servers', '--store', sys.argv[1], '-f', 'csv'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('pydantic', 'watchdog', 'synack.ingest.conn_ingest', 'rich.progress')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(sample_store)], capture_output=True, text=True)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


INVENTORY_COMMANDS = [
    ["servers"], ["clients"], ["clients", "--detail"], ["closed"], ["new-ports", "--since", "2026-11-21"],
    ["new-ports", "--since", "2026-11-21", "--clients"], ["gone-ports", "--idle-days", "1"],
]  # fmt: skip


@pytest.mark.parametrize("command", INVENTORY_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
def test_every_inventory_command_in_every_format(
    sample_store: Path, tmp_path: Path, command: list[str], fmt: str
) -> None:
    import json as jsonlib

    import pandas as pd

    args = [*command, "--store", str(sample_store), "--format", fmt]
    if fmt == "parquet":
        args += ["-o", str(tmp_path / "out.parquet")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        rows = jsonlib.loads(result.stdout)
        assert isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
    elif fmt == "csv":
        header = result.stdout.splitlines()[0].split(",")
        assert len(result.stdout.splitlines()) > 1 and "first_seen" in header
    elif fmt == "parquet":
        assert len(pd.read_parquet(tmp_path / "out.parquet")) > 0
    else:
        assert "(" in result.stdout.splitlines()[0]  # "Title (N)"


def test_ingest_maintains_the_aggregates(sample_store: Path) -> None:
    from synack.inventory.dailies import read_catalog

    catalog = read_catalog(sample_store)
    assert sorted(catalog.coarse) == ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"]
    assert catalog.legacy_days == []
    for kind in ("servers", "clients"):
        assert {p.parent.name for p in (sample_store / "aggregates" / kind).glob("date=*/*.parquet")} == {
            f"date={day}" for day in catalog.coarse
        }


def test_csv_neutralizes_formulas_and_escapes_bytes(sample_store: Path) -> None:
    result = runner.invoke(app, ["new-ports", "--since", "2026-11-21", "--store", str(sample_store), "-f", "csv"])
    line = result.stdout.splitlines()[1]
    assert "\r" not in line and "\\x0d\\x0a" in line
    assert "<script>\\x5cx41</script>" in line  # the literal backslash is escaped too
    import csv as csvlib
    import io

    for row in csvlib.reader(io.StringIO(result.stdout)):
        assert not any(cell.startswith(("=", "+", "@")) for cell in row)


def test_formula_cells_get_a_quote() -> None:
    from synack.inventory.export import neutralize_formula

    assert neutralize_formula("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert neutralize_formula("-1+2") == "'-1+2" and neutralize_formula("ok") == "ok"


def test_csv_round_trips_every_kind_of_cell() -> None:
    import csv as csvlib
    import io

    import pandas as pd

    from synack.inventory.export import write_csv

    df = pd.DataFrame(
        {
            "text": ["=1+2", "\tcmd", None, 'say "hi", then', "ok"],
            "reply": [b"\r\n\x00", None, b"\\", b"", b"x"],
            "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        }
    )
    out = io.StringIO()
    write_csv(df, out)
    rows = list(csvlib.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["text", "reply", "n"]
    # A control character is escaped first (it never reaches the spreadsheet), so "\tcmd" is no formula.
    assert [r[0] for r in rows[1:]] == ["'=1+2", "\\x09cmd", "", 'say "hi", then', "ok"]
    assert [r[1] for r in rows[1:]] == ["\\x0d\\x0a\\x00", "", "\\x5c", "", "x"]
    assert [r[2] for r in rows[1:]] == ["1", "", "3", "4", "5"]


@pytest.mark.parametrize("tz", ["UTC", None])
def test_iso_times_equal_arrows_strftime(tz: str | None) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from synack.inventory.export import iso_times

    rng = np.random.default_rng(3)
    micros = np.concatenate([rng.integers(-(10**15), 3 * 10**15, 2000), [0, -1, 86_400_000_000 - 1]])
    values = pa.array(micros, pa.timestamp("us", tz), mask=rng.random(len(micros)) < 0.05)
    expect = pc.strftime(values, format="%Y-%m-%dT%H:%M:%S" + ("%Ez" if tz else ""))
    assert iso_times(values).equals(expect)  # a day table over 130 years
    extremes = pa.array([-62_135_596_800_000_000, 253_402_300_799_999_999], pa.timestamp("us", tz))
    assert iso_times(extremes).equals(pc.strftime(extremes, format="%Y-%m-%dT%H:%M:%S" + ("%Ez" if tz else "")))
    recent = values.filter(pc.greater(values.cast(pa.int64()), 1_790_000_000_000_000))
    assert iso_times(recent).equals(pc.strftime(recent, format="%Y-%m-%dT%H:%M:%S" + ("%Ez" if tz else "")))
    nanos = pa.array([1_795_000_000_123_456_789], pa.timestamp("ns", tz))
    assert iso_times(nanos)[0].as_py().startswith("2026-11-18T") and ".123456" in iso_times(nanos)[0].as_py()


def test_csv_cells_are_neutralized_as_neutralize_formula_says() -> None:
    import pandas as pd

    from synack.ingest.visible import visible
    from synack.inventory.export import csv_table, neutralize_formula

    cells = [c + "x" for c in "=+-@\t\r!#'a^]\\ "]
    got = csv_table(pd.DataFrame({"text": cells})).column("text").to_pylist()
    # Control characters are escaped first; what is left is neutralized as neutralize_formula says.
    assert got == [neutralize_formula(visible(c)) for c in cells]
    assert sum(g != c for g, c in zip(got, cells)) == 6  # the four printable prefixes and the two escapes
    assert got[4:6] == ["\\x09x", "\\x0dx"]


def test_machine_output_in_batches_equals_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    import pandas as pd

    from synack.inventory import export

    df = pd.DataFrame({"n": range(5), "text": ["a", "=b", None, "c,d", "e"], "reply": [b"\x00", None, b"x", b"", b"y"]})
    whole = {fmt: io.StringIO() for fmt in ("csv", "json")}
    export.write_csv(df, whole["csv"])
    export.write_json(df, whole["json"])
    monkeypatch.setattr(export, "_BATCH", 2)
    for fmt, writer in (("csv", export.write_csv), ("json", export.write_json)):
        out = io.StringIO()
        writer(df, out)
        assert out.getvalue() == whole[fmt].getvalue(), fmt
    assert json.loads(whole["json"].getvalue()) == export.records(df)
    assert whole["csv"].getvalue().count("\n") == 6  # one header, five rows


def test_printable_escapes_every_byte_that_is_not_plain_ascii() -> None:
    from synack.inventory.export import printable

    shown = printable(bytes(range(256)))
    assert shown.isascii() and shown.isprintable()
    assert "\\x00" in shown and "\\x5c" in shown and "\\xff" in shown and "AZaz~" in printable(b"AZaz~")
    assert shown.count("\\x") == 256 - (0x7F - 0x20 - 1)  # all but the 94 printables other than backslash
    assert printable(None) == ""


def test_machine_records_convert_each_kind_of_cell() -> None:
    import pandas as pd

    from synack.inventory.export import records

    df = pd.DataFrame(
        {
            "seen": pd.to_datetime(["2026-11-21T10:00:05.25Z", None], utc=True),
            "n": pd.array([3, None], dtype="Int64"),
            "x": [1.5, float("nan")],
            "reply": [b"SSH-2.0\r\n", None],
        }
    )
    assert records(df) == [
        {"seen": "2026-11-21T10:00:05.250000+00:00", "n": 3, "x": 1.5, "reply": "SSH-2.0\\x0d\\x0a"},
        {"seen": None, "n": None, "x": None, "reply": None},
    ]


def test_a_terminal_table_escapes_what_the_network_sent() -> None:
    import pandas as pd

    from synack.inventory.text_table import render, shown

    assert shown("\x1b[31mred\x07") == "\\x1b[31mred\\x07" and shown("café") == "caf\\xe9" and shown("ok") == "ok"
    view = pd.DataFrame({"server": ["10.0.0.1", "10.0.0.2"], "service": ["\x1b]0;owned\x07", None], "conns": [7, 1234]})
    lines = render(view, "t", 40, {"service": 10})
    assert all(line.isprintable() and "\x1b" not in line for line in lines)
    assert lines[1].split() == ["server", "service", "conns"]
    assert lines[3].endswith("     7") and lines[4].endswith("1234")  # numbers right-aligned
    assert "…" in lines[3] and max(len(line) for line in lines) <= 40  # the long service cut to fit


def test_table_fits_a_100_column_terminal_and_a_pipe_gets_every_column(
    sample_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synack import cli

    piped = runner.invoke(app, ["servers", "--store", str(sample_store), "--nets", "all"])
    header = piped.stdout.splitlines()[1]
    assert all(name in header for name in ("server", "port", "clients", "reply")) and "fd00:10::5" in piped.stdout
    assert not header.endswith("…")  # no column dropped
    monkeypatch.setattr(cli.out, "_force_terminal", True)
    monkeypatch.setattr(cli.out, "_width", 100)
    result = runner.invoke(app, ["servers", "--store", str(sample_store), "--nets", "all"])
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert max(len(line) for line in piped.stdout.splitlines()) > 100  # the IPv6 server and its reply, whole


def test_a_terminal_table_is_capped_and_says_how_to_get_every_row(
    sample_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synack import cli

    piped = runner.invoke(app, ["servers", "--store", str(sample_store), "--nets", "all"])
    rows = int(piped.stdout.splitlines()[0].rsplit("(", 1)[1].rstrip(")"))
    monkeypatch.setattr(cli, "TERMINAL_ROWS", 3)
    assert "not shown" not in runner.invoke(app, ["servers", "--store", str(sample_store), "--nets", "all"]).stdout
    monkeypatch.setattr(cli.out, "_force_terminal", True)
    monkeypatch.setattr(cli.out, "_width", 100)
    shown = runner.invoke(app, ["servers", "--store", str(sample_store), "--nets", "all"]).stdout
    assert f"... {rows - 3} more rows not shown" in shown and "-f csv -o FILE" in shown
    assert f"Server ports ({rows})" in shown  # the title counts them all


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["servers", "--since", "not-a-date"], "not a date"),
        (["servers", "--nets", "10.0.0.0/99"], "not a network"),
        (["servers", "--format", "parquet"], "needs -o"),
    ],
)
def test_inventory_errors_are_one_line(sample_store: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--store", str(sample_store)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.output


def test_bad_allowlist_line_is_named(sample_store: Path, tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("10.0.0.1 tcp 80\nbogus line\n")
    result = runner.invoke(app, ["new-ports", "--store", str(sample_store), "--allow", str(allow)])
    assert result.exit_code == 2 and "allow.txt line 2" in result.stderr


def test_empty_result_says_so(sample_store: Path) -> None:
    result = runner.invoke(
        app, ["new-ports", "--since", "2026-11-19", "--until", "2026-11-20", "--store", str(sample_store)]
    )
    assert result.exit_code == 0 and "no new server ports" in result.stdout


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["servers", "--store", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no synack store" in result.stderr


def test_version_and_short_help() -> None:
    from importlib.metadata import version

    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"synack {version('synack')}"
    for args in (["-h"], ["servers", "-h"], ["check", "-h"]):
        helped = runner.invoke(app, args)
        assert helped.exit_code == 0 and "Usage:" in helped.output, args


def test_output_file_for_tables_is_written_whole_and_bad_targets_are_one_line(
    sample_store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "servers.txt"
    result = runner.invoke(app, ["servers", "--store", str(sample_store), "-o", str(target)])
    assert result.exit_code == 0 and result.stdout == ""
    text = target.read_text()
    assert text.startswith("Server ports (") and "22/tcp" in text
    assert not list(tmp_path.glob(".*.tmp"))
    for bad, why in ((tmp_path / "missing" / "x.txt", "No such file or directory"), (tmp_path, "is a directory")):
        for fmt in ("table", "csv", "parquet"):
            result = runner.invoke(app, ["servers", "--store", str(sample_store), "-f", fmt, "-o", str(bad)])
            assert result.exit_code == 2 and why in result.stderr, (fmt, result.output)
            assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_clients_are_sorted_by_address_not_as_text(tmp_path: Path) -> None:
    from synack.ingest.conn_ingest import ingest_paths
    from tests.conftest import conn_header, write_log

    lines = [conn_line(f"C{i}", orig=client, resp="10.0.0.2") for i, client in enumerate(["10.0.0.18", "10.0.0.9"])]
    store = tmp_path / "store"
    ingest_paths([write_log(tmp_path / "logs" / "conn.log", conn_header() + "".join(lines))], store)
    for command in (["clients"], ["clients", "--detail"]):
        result = runner.invoke(app, [*command, "--store", str(store), "-f", "csv"])
        rows = result.stdout.splitlines()[1:]
        assert [r.split(",")[0].strip('"') for r in rows] == ["10.0.0.9", "10.0.0.18"], result.stdout


def test_options_that_would_be_ignored_are_refused_or_noted(sample_store: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["gone-ports", "--store", str(sample_store), "--idle-days", "-1"])
    assert result.exit_code == 2 and "--idle-days" in result.output
    both = ["--date", "2026-11-20", "--since", "2026-11-01"]
    result = runner.invoke(app, ["report", "--store", str(sample_store), *both, "-o", str(tmp_path)])
    assert result.exit_code == 2 and "not both" in result.output and not list(tmp_path.iterdir())
    result = runner.invoke(app, ["servers", "--store", str(sample_store), "--allow", "/nonexistent"])
    assert result.exit_code == 2 and "cannot read allowlist /nonexistent" in result.output
    allow = tmp_path / "allow.txt"
    allow.write_text("10.0.0.0/8 tcp 80-\n")
    result = runner.invoke(app, ["new-ports", "--store", str(sample_store), "--allow", str(allow)])
    assert result.exit_code == 2 and "not a port or range: '80-'" in result.stderr
    result = runner.invoke(app, ["servers", "--store", str(sample_store), "--sensor", "edge-1,nosuch"])
    assert result.exit_code == 0 and "no records from sensor 'nosuch'" in result.stderr and "'edge-1'" in result.stderr
    assert "edge-1,nosuch" not in result.stderr


def test_an_empty_answer_names_the_range_it_used_and_the_newest_record(sample_store: Path) -> None:
    result = runner.invoke(
        app, ["servers", "--store", str(sample_store), "--since", "2026-11-25", "--until", "2026-11-26"]
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "no server ports from 2026-11-25 00:00 to 2026-11-26 00:00 UTC (the store's newest record: 2026-11-21 14:58)"
    )
    result = runner.invoke(app, ["new-ports", "--store", str(sample_store)])  # the last day before now: none
    assert "UTC (the query's as-of time; the store's newest record: 2026-11-21 14:58)" in result.stdout
    late = runner.invoke(
        app, ["servers", "--store", str(sample_store), "--since", "2026-11-25", "--as-of", "2026-11-26"]
    )
    assert "from 2026-11-25 00:00 to 2026-11-26 00:00 UTC (the query's as-of" in late.stdout  # not "now"


def test_status_says_what_the_store_holds(sample_store: Path) -> None:
    import json

    result = runner.invoke(app, ["status", "--store", str(sample_store)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "4 days, 2026-11-18 to 2026-11-21" in lines[0] and f"(ledger version {LEDGER_VERSION}" in lines[0]
    assert any(line.startswith("  sensor edge-1: ") and "newest 2026-11-21 14:58" in line for line in lines)
    assert any(line.startswith("  ") and "log sources, last ingest 20" in line for line in lines)
    assert "  settings: nets 10.0.0.0/8, 172.16.0.0/12" in result.stdout
    doc = json.loads(runner.invoke(app, ["status", "--store", str(sample_store), "--json"]).stdout)
    assert doc["days"] == 4 and set(doc["sensors"]) == {"edge-1", "core-2"}
    assert doc["sources"] >= 13 and doc["quarantined_lines"] >= 0 and doc["last_ingest"].startswith("20")
    assert doc["settings"]["sensors"] == "all" and doc["settings"]["allowlist_entries"] == 0
    assert doc["records"] == sum(s["records"] for s in doc["sensors"].values())
    missing = runner.invoke(app, ["status", "--store", str(sample_store.parent / "nothing")])
    assert missing.exit_code == 2 and "no synack store" in missing.stderr


def test_exit_codes_follow_one_table(sample_store: Path, tmp_path: Path) -> None:
    """0 done; 1 done and something needs attention; 2 an error."""
    assert "Exit codes: 0 done; 1 done, and something needs attention" in runner.invoke(app, ["-h"]).stdout
    new = runner.invoke(app, ["new-ports", "--store", str(sample_store), "--since", "2026-11-21", "--exit-code"])
    assert new.exit_code == 1 and "8443" in new.stdout
    none = runner.invoke(app, ["new-ports", "--store", str(sample_store), "--since", "2026-11-25", "--exit-code"])
    assert none.exit_code == 0
    assert runner.invoke(app, ["new-ports", "--store", str(sample_store), "--since", "2026-11-21"]).exit_code == 0
    gone = runner.invoke(
        app, ["gone-ports", "--store", str(sample_store), "--idle-days", "1", "--exit-code", "--as-of", "newest"]
    )
    assert gone.exit_code == 1 and gone.stdout.strip()
    assert runner.invoke(app, ["servers", "--store", str(tmp_path / "none")]).exit_code == 2  # an error
    assert runner.invoke(app, ["servers", "--bogus"]).exit_code == 2  # a bad command line


def test_every_command_has_help_that_shows_its_settings() -> None:
    import typer.main

    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"ingest", "servers", "report", "status", "check"} <= set(names)
    for name in names:
        command = group.commands[name]  # type: ignore[attr-defined]
        assert (command.help or "").strip(), f"{name} has no help text"
        shown = " ".join(runner.invoke(app, [name, "-h"]).stdout.replace("│", " ").split())
        assert command.help.split("\n")[0].split()[0] in shown, name
        if any(p.name == "store" for p in command.params):
            assert "(env SYNACK_STORE; synack.toml 'store'; default ./synack-store)" in shown, name


def test_many_files_failing_for_one_reason_are_one_line(tmp_path: Path) -> None:
    for i in range(27):
        (tmp_path / "logs" / f"d{i:02d}").mkdir(parents=True)
        (tmp_path / "logs" / f"d{i:02d}" / "conn.log").write_text("not a zeek log\n")
    (tmp_path / "logs" / "other").mkdir()
    (tmp_path / "logs" / "other" / "conn.log").write_text("#separator \\x09\n#fields\tts\n1.0\n")
    result = runner.invoke(app, ["ingest", str(tmp_path / "logs"), "--store", str(tmp_path / "s")])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 2, result.stderr
    first = tmp_path / "logs" / "d00" / "conn.log"
    reason = (
        "not a Zeek log: line 1 starts with neither a Zeek header ('#separator' and a space or tab, then the"
        " separator) nor a JSON object ('{')"
    )
    assert errors[0] == f"error: 27 files: {reason} (first: {first})"
    assert str(tmp_path / "logs" / "other" / "conn.log") in errors[1]


def test_json_lines_hold_the_same_records_as_json(sample_store: Path) -> None:
    import json

    as_json = json.loads(runner.invoke(app, ["servers", "--store", str(sample_store), "-f", "json"]).stdout)
    lines = runner.invoke(app, ["servers", "--store", str(sample_store), "-f", "jsonl"]).stdout.splitlines()
    assert len(lines) == len(as_json) > 0
    assert [json.loads(line) for line in lines] == as_json
    assert all(line.startswith("{") and line.endswith("}") for line in lines)


def test_servers_and_gone_ports_name_zeeks_service_and_the_iana_name_alike(sample_store: Path) -> None:
    import csv
    import io

    for command in (["servers"], ["gone-ports", "--idle-days", "1"]):
        out = runner.invoke(app, [*command, "--store", str(sample_store), "-f", "csv"]).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows and {"port_name", "services"} <= set(rows[0]), command
    args = ["gone-ports", "--idle-days", "1", "--store", str(sample_store), "-f", "csv", "--as-of", "newest"]
    gone = list(csv.DictReader(io.StringIO(runner.invoke(app, args).stdout)))
    assert [(r["server_p"], r["port_name"], r["services"]) for r in gone] == [("21", "ftp", "ftp")]


def test_as_of_newest_makes_every_relative_time_count_from_the_newest_record(
    sample_store: Path, tmp_path: Path
) -> None:
    """Ages, default periods, 'gone' and the report's 'yesterday' count back
    from the wall clock by default and from the newest record with --as-of
    newest (the samples end on 2026-11-21 14:58 UTC, days before today)."""
    from synack.inventory import Inventory

    newest = Inventory(sample_store, as_of="newest").as_of
    assert newest.strftime("%Y-%m-%d %H:%M") == "2026-11-21 14:58"
    recent = runner.invoke(app, ["servers", "--store", str(sample_store), "--since", "1d", "-f", "csv"])
    archived = runner.invoke(app, ["servers", "--store", str(sample_store), "--since", "1d", "-f", "csv",
                                   "--as-of", "newest"])  # fmt: skip
    assert recent.exit_code == archived.exit_code == 0
    assert recent.stdout.count("\n") == 1 and archived.stdout.count("\n") > 3  # a header only, then rows
    gone_now = runner.invoke(app, ["gone-ports", "--store", str(sample_store), "-f", "csv"]).stdout.count("\n")
    gone_then = runner.invoke(app, ["gone-ports", "--store", str(sample_store), "-f", "csv", "--as-of", "newest"])
    assert gone_now > gone_then.stdout.count("\n")  # a week after the samples, more ports are quiet
    report = runner.invoke(app, ["report", "--store", str(sample_store), "--as-of", "newest", "-o", str(tmp_path)])
    assert "report 2026-11-20" in report.stdout, report.stdout
    bad = runner.invoke(app, ["servers", "--store", str(sample_store), "--as-of", "someday"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1


def test_shell_completion_is_offered() -> None:
    """--show-completion prints the completion script of the user's shell (--install-completion installs it)."""
    # Typer detects the shell from the process tree: run under a bash that
    # stays the parent ("; true" keeps it from exec'ing the command).
    code = 'from synack.cli import app; app(prog_name="synack")'
    command = f"{shlex.quote(sys.executable)} -c '{code}' --show-completion"
    result = subprocess.run(["bash", "-c", command + "; true"], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, env={**os.environ, "SHELL": "/bin/bash"})  # fmt: skip
    assert "_SYNACK_COMPLETE=complete_bash" in result.stdout, result.stdout + result.stderr


def test_allow_on_servers_clients_and_closed_adds_an_allowed_column(sample_store: Path, tmp_path: Path) -> None:
    """With --allow, servers, clients (by client, as new-ports --clients matches) and closed mark
    what the allowlist expects in an `allowed` column; without it there is no such column."""
    allow = tmp_path / "allow.txt"
    allow.write_text("10.1.0.10 tcp 80,443\n10.1.0.101 any 1-1024\n")
    for command, host, matched in (
        (["servers"], "server_h", {("10.1.0.10", "80"), ("10.1.0.10", "443")}),
        (["clients"], "client_h", None),
        (["closed"], "server_h", None),
    ):
        base = [*command, "--store", str(sample_store), "--nets", "all", "-f", "csv"]
        plain = list(csv.DictReader(io.StringIO(runner.invoke(app, base).stdout)))
        marked = list(csv.DictReader(io.StringIO(runner.invoke(app, [*base, "--allow", str(allow)]).stdout)))
        assert plain and "allowed" not in plain[0] and len(marked) == len(plain), command
        yes = {(r[host], r["server_p"]) for r in marked if r["allowed"] == "true"}
        expected = matched or {
            (r[host], r["server_p"]) for r in plain
            if (r[host] == "10.1.0.10" and r["proto"] == "tcp" and r["server_p"] in ("80", "443"))
            or (r[host] == "10.1.0.101" and int(r["server_p"]) <= 1024)
        }  # fmt: skip
        assert yes == expected, command
    assert any(r["allowed"] == "true" for r in csv.DictReader(io.StringIO(runner.invoke(
        app, ["clients", "--store", str(sample_store), "--allow", str(allow), "-f", "csv"]).stdout)))  # fmt: skip


def test_ingest_from_standard_input(tmp_path: Path) -> None:
    """`synack ingest -`: a log piped in is taken as complete (a cut last line
    is quarantined); piping the same log again, even gzipped, adds nothing."""
    import gzip

    from tests.conftest import conn_header, conn_line

    lines = [conn_line(f"C{i}", ts=1795000000.0 + i, resp_p=80 + i) for i in range(5)]
    text = (conn_header() + "".join(lines)).encode()
    store = str(tmp_path / "store")
    first = runner.invoke(app, ["ingest", "-", "--store", store], input=text[:-20])  # the last line cut short
    assert first.exit_code == 0, first.output
    assert "4 rows, 1 quarantined" in first.output
    again = runner.invoke(app, ["ingest", "-", "--store", store], input=gzip.compress(text[:-20]))
    assert again.exit_code == 0 and "0 rows, 0 quarantined" in again.output, again.output
    quarantined = "".join(p.read_text() for p in (tmp_path / "store" / "quarantine").glob("*.jsonl"))
    assert "C4" in quarantined
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.startswith(".stdin")]  # the spool is gone
    mixed = runner.invoke(app, ["ingest", "-", str(tmp_path), "--store", store])
    assert mixed.exit_code == 2 and "read alone" in mixed.output


def _example(name: str) -> list[str]:
    """The arguments of the `Example:` line of a command's help (after `synack NAME`)."""
    import typer.main

    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    line = next(line for line in (command.help or "").splitlines() if line.strip().startswith("Example:"))
    words = shlex.split(line.split("Example:", 1)[1].split("(")[0])
    assert words[:2] == ["synack", name], line
    return words[2:]


@pytest.mark.parametrize("name", commands())
def test_every_command_has_an_example_and_the_query_examples_run(
    name: str, sample_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an example's relative output (host.html) lands here, not in the checkout
    args = _example(name)
    if name in ("servers", "clients", "closed", "gone-ports", "changed-ports", "notices", "host", "status", "check"):
        result = runner.invoke(app, [name, *args, "--store", str(sample_store)])
        assert result.exit_code == 0, (name, result.output)
    elif name == "new-ports":
        allow = tmp_path / "allow.txt"
        allow.write_text("10.1.0.0/16 tcp 22\n")
        args = [str(allow) if a == "allow.txt" else a for a in args]
        result = runner.invoke(app, [name, *args, "--store", str(sample_store), "--as-of", "2026-11-22"])
        assert result.exit_code == 1 and "10.1.0.11" in result.stdout, result.output  # the planted new port
    else:
        # The others name a deployment's paths: run them on the samples and this test's folder.
        from synack.samples.generate import OUT

        (tmp_path / "www").mkdir()
        (tmp_path / "allow.txt").write_text("10.1.0.0/16 tcp 22\n")
        store = tmp_path / "store"
        if name in ("rebuild", "report", "export-known", "prune", "quarantine"):
            shutil.copytree(sample_store, store)
        places = {"/opt/zeek/logs": OUT, "/var/lib/synack": store, "/var/www/synack": tmp_path / "www",
                  "/opt/zeek/share/synack/known.tsv": tmp_path / "known.tsv",
                  "/opt/zeek/share/known.tsv": tmp_path / "known.tsv", "allow.txt": tmp_path / "allow.txt"}  # fmt: skip
        args = [str(places.get(a, a)) for a in args]
        if "--store" not in args and name != "demo":
            args += ["--store", str(store)]
        result = runner.invoke(app, [name, *args, *(["--once"] if name == "watch" else [])])
        assert result.exit_code in ((0, 1) if name == "report" else (0,)), (name, args, result.output)
        if name in ("export-known", "watch"):
            assert "10.1.0.11\ttcp\t22" in (tmp_path / "known.tsv").read_text().replace("/32", "")
        if name == "report":
            assert any(p.suffix == ".html" for p in (tmp_path / "www").iterdir())


def test_parquet_answers_have_one_schema_whatever_the_data(
    sample_store: Path, tmp_path: Path, make_conn_log: Callable[..., Path]
) -> None:
    """Daily exports concatenate: a store without replies writes server_reply as binary too."""
    import pyarrow.parquet as pq

    plain = tmp_path / "plain"
    runner.invoke(app, ["ingest", str(make_conn_log("conn.log", [conn_line("A")])), "--store", str(plain)])
    schemas = []
    for store in (plain, sample_store):
        out = tmp_path / f"{store.name}.parquet"
        done = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all", "-f", "parquet", "-o", str(out)])
        assert done.exit_code == 0, done.output
        schemas.append(pq.read_schema(out).remove_metadata())
    assert schemas[0] == schemas[1] and schemas[0].field("server_reply").type == pa.binary()
    assert schemas[0].field("synack_seen").type == pa.bool_()


def test_settings_that_do_nothing_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              make_conn_log: Callable[..., Path]) -> None:  # fmt: skip
    """An unknown synack.toml key, or --workers without the Dask engine, is one error line (exit 2)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synack.toml").write_text('net = "all"\n')
    result = runner.invoke(app, ["servers"])
    assert result.exit_code == 2 and "unknown setting 'net' (did you mean 'nets'?)" in result.stderr
    (tmp_path / "synack.toml").unlink()
    log = make_conn_log("conn.log", [conn_line("A")])
    result = runner.invoke(app, ["ingest", str(log), "--workers", "2"])
    assert result.exit_code == 2 and "needs --engine dask" in result.output
    named = runner.invoke(app, ["ingest", str(log), "--sensor-name", "edge-9", "--store", str(tmp_path / "s")])
    assert named.exit_code == 0, named.output
    assert "edge-9" in runner.invoke(app, ["status", "--store", str(tmp_path / "s")]).stdout


def test_sigterm_stops_a_command_and_removes_its_temporary_files(tmp_path: Path) -> None:
    """A command stopped by SIGTERM (a `timeout`, a service manager) exits
    143 and leaves no temporary directory: before, a year's clients --detail
    killed by `timeout` left its 6.3 GB band split in /tmp."""
    import subprocess
    import sys

    code = "\n".join([
        "import os, signal, sys, time",
        "from synack import cli",
        "from synack.inventory.answer_stream import temporary_directory",
        "def work():",
        "    with temporary_directory('synack-test-', 'a test') as name:",
        "        print(name, flush=True)",
        "        os.kill(os.getpid(), signal.SIGTERM)",
        "        time.sleep(30)",
        "cli.app = work",
        "cli.main()",
    ])  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    name = done.stdout.strip()
    assert done.returncode == 143, done.stderr
    assert name.startswith(str(tmp_path)) and not Path(name).exists()
    assert not list(tmp_path.iterdir())
