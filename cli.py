"""The `synack` command line: parses options, calls one library function, prints.

Settings are resolved here and only here, in this order: command-line
option > environment variable > `synack.toml` (in the working directory,
or the file named by SYNACK_CONFIG) > default.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import io
import itertools
import os
import re
import signal
import sys
import tempfile
import tomllib
import traceback
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

# Arrow's C++ code (Parquet decoding, kernels) allocates from the pool this names, read once when Arrow first
# allocates: the system allocator, like the Python side's (bound_memory). mimalloc kept hundreds of MB a query had
# freed (the fan-in day's `clients`: 426 MB -> 285 MB after 20 bands).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import pyarrow as pa  # noqa: E402
import typer  # noqa: E402
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

    from synack.ingest.conn_ingest import IngestSummary
    from synack.ingest.engines import Engine
    from synack.ingest.snapshot import Snapshot, StoreFS
    from synack.inventory import Inventory
    from synack.inventory.store_inventory import Filters
from synack.ingest.errors import SynackError
from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_LINE_BYTES, MIN_LINE_BYTES
from synack.ingest.visible import plural, visible

Answer = TypeVar("Answer")

#: The exit codes of every command.
EXIT_ATTENTION = 1  # done, and something needs attention: a report period without data, problems found, --exit-code
EXIT_ERROR = 2  # an error: a bad command line, bad input, a failure (one line on stderr)

app = typer.Typer(
    help="Inventory of server ports and client ports from Zeek (and Suricata) logs.",
    epilog="Exit codes: 0 done; 1 done, and something needs attention (a report period without data, problems "
    "found by check, a non-empty answer under --exit-code); 2 an error (a bad command line, bad input, a failure).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"synack {version('synack')}")
        except PackageNotFoundError:
            print("synack (not installed: run from a checkout)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print synack's version and exit.")
    ] = False,
) -> None:
    """Inventory of server ports and client ports from Zeek (and Suricata) logs."""


out = Console(highlight=False, width=None if sys.stdout.isatty() else 100)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_STORE = "./synack-store"


def bound_memory() -> None:
    """Process-wide allocator settings that keep an ingest's (and a query's) peak memory flat.

    Arrow's buffers go to the system allocator; glibc keeps at most two
    arenas and serves blocks over 4 MB with mmap (a fixed threshold, so it
    does not creep up), so memory freed by one chunk goes back to the
    system or to the next chunk instead of being cached per thread. This is the process's business, so it is set
    here at the edge, never by the library.
    """
    from synack.ingest.heap import glibc

    pa.set_memory_pool(pa.system_memory_pool())
    libc = glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 4 << 20)


_M_ARENA_MAX = -8  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3


def _config() -> dict[str, Any]:
    """synack.toml (or SYNACK_CONFIG), read once per process and checked: every key a known setting."""
    path = Path(os.environ.get("SYNACK_CONFIG", "synack.toml")).resolve()
    try:
        version = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    except OSError:
        version = None
    return _read_config(path, version) if version is not None else {}


@functools.lru_cache(maxsize=4)
def _read_config(path: Path, version: tuple[int, int]) -> dict[str, Any]:
    """The settings of `path` as it is at `version` (its mtime and size): read once per version."""
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SynackError(f"cannot read {path}: {e}") from None
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        import difflib

        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, CONFIG_KEYS, 1)) else repr(k)
                 for k in unknown]  # fmt: skip
        raise SynackError(f"{path}: unknown setting {', '.join(hints)}; the settings: {', '.join(CONFIG_KEYS)}")
    return config


#: The keys synack.toml may hold (each also an option and a SYNACK_* variable).
CONFIG_KEYS = ("allow", "as_of", "engine", "ledger", "nets", "scheduler", "sensor", "store")


def setting(value: Any, env: str, key: str, default: Any) -> Any:
    """Resolve one setting: option > environment > synack.toml > default."""
    if value is not None:
        return value
    if os.environ.get(env):
        return os.environ[env]
    config = _config()
    if key in config:
        value = config[key]
        if not isinstance(value, str):
            raise SynackError(f"synack.toml: '{key}' must be a string, not {value!r}")
        return value
    return default


def say(text: str) -> None:
    """Print one line on stderr, its control characters escaped (it may quote a log)."""
    err.print(visible(text), markup=False, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise."""
    say(f"error: {message}")
    return typer.Exit(code=EXIT_ERROR)


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store directory, or object-storage URL (s3://bucket/prefix, gs://...; needs --ledger) "
        "(env SYNACK_STORE; synack.toml 'store'; default ./synack-store).",
    ),
]
LedgerOption = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        help="The store's ledger, a local file (env SYNACK_LEDGER; synack.toml 'ledger'; default "
        "ledger.sqlite in a local store; required for a store on object storage).",
    ),
]


def located(store: str | None, ledger: Path | None) -> StoreFS:
    """The store the settings name (option > environment > synack.toml >
    default); a location that cannot be opened is one error line. A
    location's credentials are scrubbed from everything this process prints
    from here on (the library shows locations redacted already; this also
    catches a credential that a file system library quotes in its errors)."""
    from synack.ingest.snapshot import locate

    location = setting(store, "SYNACK_STORE", "store", DEFAULT_STORE)
    keep_secret(location)
    try:
        return locate(location, setting(ledger, "SYNACK_LEDGER", "ledger", None))
    except SynackError as e:
        raise fail(str(e)) from None


class _Scrubbing(io.TextIOBase):
    """A text stream that writes to `stream` with every secret replaced by `***`."""

    def __init__(self, stream: Any, secrets: list[str]) -> None:
        from synack.ingest.store_files import scrubbed

        self.stream, self.secrets, self._scrubbed = stream, secrets, scrubbed

    def write(self, text: str) -> int:
        self.stream.write(self._scrubbed(text, self.secrets))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())


#: Credentials of the store location this process was given: never printed.
_SECRETS: list[str] = []


def keep_secret(location: str) -> None:
    """Scrub the credentials `location` carries from standard output and
    error (and crash files) for the rest of this process."""
    from synack.ingest.store_files import location_secrets

    _SECRETS.extend(v for v in location_secrets(location) if v not in _SECRETS)
    if not _SECRETS:
        return
    _SECRETS.sort(key=len, reverse=True)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, _Scrubbing):
            setattr(sys, name, _Scrubbing(stream, _SECRETS))


def _require_ledger(files: StoreFS) -> None:
    """Fail in one line when the store has no ledger (nothing was ever ingested into it)."""
    if not files.ledger.exists():
        raise fail(f"no synack store at {files} (no ledger {files.ledger}: run 'synack ingest' first, or pass "
                   "--store and --ledger)")  # fmt: skip


def _summary_line(s: IngestSummary) -> str:
    done = [f for f in s.files if f.status != "error"]
    skipped = f", {len(s.skipped)} other logs skipped" if s.skipped else ""
    notices = f", {s.notices:,} sensor notices" if s.notices else ""
    notices += f", {plural(s.identities, 'identity fact')}" if s.identities else ""
    return (
        f"ingested {plural(len(done), 'file')}{skipped}: {plural(s.rows, 'row')}{notices}, "
        f"{s.quarantined:,} quarantined, {s.seconds:.2f} s, {s.rows_per_second:,.0f} rows/s"
    )


def _run_ingest(
    paths: list[Path],
    store: StoreFS | Path,
    sensor: str | None,
    show_progress: bool,
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    engine: Engine | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    within_tree: bool = False,
) -> IngestSummary:
    # Imported here: a query's start-up is part of its answer time.
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from synack.ingest.engines import LOCAL, ingest_paths

    engine = engine or LOCAL
    if not show_progress:
        return ingest_paths(paths, store, sensor=sensor, clock_skew=clock_skew, engine=engine,
                            max_line_bytes=max_line_bytes, within_tree=within_tree)  # fmt: skip
    with Progress(
        TextColumn("{task.description}", markup=False),  # a file name is data: no Rich markup
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None, rows=0)

        def progress(path: Path, rows: int) -> None:
            bar.update(task, description=visible(path.name[:40]), rows=rows)  # no escape reaches the terminal

        return ingest_paths(paths, store, sensor=sensor, progress=progress, clock_skew=clock_skew, engine=engine,
                            max_line_bytes=max_line_bytes, within_tree=within_tree)  # fmt: skip


EngineOption = Annotated[
    str | None,
    typer.Option(help="Where logs are parsed and aggregated: local (this process) or dask (a Dask cluster; needs "
                 "pip install 'synack\\[dask]') (env SYNACK_ENGINE; synack.toml 'engine'; default local)."),
]  # fmt: skip
SchedulerOption = Annotated[
    str | None,
    typer.Option(help="The Dask scheduler to use, e.g. tcp://host:8786 (env SYNACK_SCHEDULER; synack.toml "
                 "'scheduler'; default: a local cluster started for the run)."),
]  # fmt: skip
WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="Worker processes of the local Dask cluster (default: one per core).")
]


def _engine(engine: str | None, scheduler: str | None, workers: int | None) -> Engine:
    """The engine the options, environment and synack.toml ask for."""
    from synack.ingest.engines import Engine

    kind = setting(engine, "SYNACK_ENGINE", "engine", "local")
    if kind != "dask" and workers is not None:
        raise typer.BadParameter(
            "--workers sizes a local Dask cluster: it needs --engine dask", param_hint="'--workers'"
        )
    if kind != "dask" and scheduler is not None:
        raise typer.BadParameter("--scheduler names a Dask cluster: it needs --engine dask", param_hint="'--scheduler'")
    return Engine(kind, setting(scheduler, "SYNACK_SCHEDULER", "scheduler", None), workers)


SensorNameOption = Annotated[
    str | None,
    typer.Option("--sensor-name", "--sensor", envvar="SYNACK_SENSOR",
                 help="Sensor name for records whose log does not name one (--sensor: the old name, until the "
                 "next release)."),
]  # fmt: skip
MaxLineOption = Annotated[
    int,
    typer.Option(
        "--max-line-bytes",
        min=MIN_LINE_BYTES,
        help="A longer line is no record: it is quarantined by reference (file, offset, length), never held whole.",
    ),
]
WithinTreeOption = Annotated[
    bool,
    typer.Option(
        "--within-tree",
        help="Follow no symbolic link that leads outside the directories given (zeekctl's 'current' does: "
        "name the spool directory too).",
    ),
]
ClockSkewOption = Annotated[
    float,
    typer.Option(
        "--clock-skew",
        min=0,
        help="Seconds a record may lie ahead of this machine's clock; later ones are quarantined.",
    ),
]


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="conn logs (.log, .log.gz, JSON) or Zeek log directories; '-' reads one log from "
            "standard input (taken as complete; the same log piped again adds nothing)."
        ),
    ],
    store: StoreOption = None,
    ledger: LedgerOption = None,
    sensor: SensorNameOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line.")] = False,
    clock_skew: ClockSkewOption = DEFAULT_CLOCK_SKEW_SECONDS,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    max_line_bytes: MaxLineOption = DEFAULT_MAX_LINE_BYTES,
    within_tree: WithinTreeOption = False,
) -> None:
    """Ingest Zeek conn logs into the store, exactly once (re-running adds nothing).

    Example: synack ingest /opt/zeek/logs --store /var/lib/synack"""
    bound_memory()
    if Path("-") in paths and len(paths) > 1:
        raise fail("'-' (standard input) is read alone, not with files")
    try:
        store_dir = located(store, ledger)
        sensor_name = setting(sensor, "SYNACK_SENSOR", "sensor", None)
        if paths == [Path("-")]:
            from synack.ingest.conn_ingest import ingest_stdin

            summary = ingest_stdin(sys.stdin.buffer, store_dir, sensor=sensor_name, clock_skew=clock_skew,
                                   max_line_bytes=max_line_bytes)  # fmt: skip
        else:
            run_on = _engine(engine, scheduler, workers)
            summary = _run_ingest(paths, store_dir, sensor_name, err.is_terminal and not quiet, clock_skew, run_on,
                                  max_line_bytes, within_tree)  # fmt: skip
    except SynackError as e:
        raise fail(str(e)) from None
    if summary.skipped and not quiet:
        names = ", ".join(sorted({p.name.split(".")[0] for p in summary.skipped}))
        say(f"skipped {len(summary.skipped)} logs synack does not read ({names})")
    if summary.outside:
        say(visible(f"did not follow {plural(len(summary.outside), 'link')} leading outside the directories given "
                    f"(--within-tree): {', '.join(str(p) for p in summary.outside[:5])}"))  # fmt: skip
    for line in _error_lines([f for f in summary.files if f.status == "error"]):
        say(line)
    for f in summary.files:
        if f.status != "error" and f.message and not quiet:
            say(f"note: {f.path}: {f.message}")
    for repair in summary.repairs:
        say(f"note: {repair}")
    if summary.upgraded and not quiet:
        say(f"upgraded the aggregates of {len(summary.upgraded)} days written by an older synack")
    if summary.quarantined and not quiet:
        say(f"{summary.quarantined} lines quarantined: see {store_dir.root / 'quarantine'}")
    out.print(_summary_line(summary), markup=False, soft_wrap=True)
    if summary.errors:
        raise typer.Exit(code=EXIT_ERROR)


#: Files failing for one reason are named one by one up to this many, then summed up in one line.
ERRORS_NAMED = 3


def _error_lines(failed: list[Any]) -> list[str]:
    """One error line per failed file, or, for a reason shared by more than
    ERRORS_NAMED files (a directory of other logs), one line with their count and the first."""
    by_reason: dict[str, list[Any]] = {}
    for f in failed:
        by_reason.setdefault(f.message.replace(str(f.path), "").strip(" :") or f.message, []).append(f)
    lines = []
    for reason, files in by_reason.items():
        if len(files) > ERRORS_NAMED:
            lines.append(f"error: {len(files)} files: {reason.removeprefix('is ')} (first: {files[0].path})")
        else:
            lines.extend(f"error: {f.message}" for f in files)
    return lines


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"


SinceOption = Annotated[
    str | None, typer.Option(help="Start of the range (inclusive): YYYY-MM-DD, ISO time, or an age like 7d.")
]
UntilOption = Annotated[str | None, typer.Option(help="End of the range (exclusive), same forms as --since.")]
SensorOption = Annotated[str | None, typer.Option("--sensor", help="Only these sensors (comma-separated).")]
NetsOption = Annotated[
    str | None,
    typer.Option(
        help="Monitored networks, comma-separated CIDRs or 'all' (env SYNACK_NETS; default RFC 1918, "
        "100.64/10, fc00::/7)."
    ),
]
AllowOption = Annotated[
    Path | None, typer.Option(help="Allowlist of expected services (host-or-CIDR proto ports) (env SYNACK_ALLOW).")
]
AsOfOption = Annotated[
    str | None,
    typer.Option(help="The 'now' that ages (7d), default periods and 'gone' count back from: a date or time (UTC), "
                 "or 'newest', the store's newest record, for archived logs (env SYNACK_AS_OF; synack.toml "
                 "'as_of'; default: the wall clock)."),
]  # fmt: skip
HostOption = Annotated[
    list[str] | None, typer.Option("--host", help="Only this address or network (CIDR); repeatable.")
]
PortOption = Annotated[
    list[str] | None, typer.Option("--port", help="Only this port or range (1000-2000); repeatable.")
]
ProtoOption = Annotated[str | None, typer.Option("--proto", help="Only this protocol (tcp, udp).")]
ServiceOption = Annotated[
    list[str] | None,
    typer.Option("--service", help="Only ports with this Zeek service or IANA name (ssh, http); repeatable."),
]
SortOption = Annotated[str | None, typer.Option("--sort", help="Sort by these columns (comma-separated).")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=0, help="At most this many rows.")]
ColumnsOption = Annotated[
    str | None, typer.Option("--columns", help="Show only these columns, in this order (comma-separated).")
]


def _columns(df: pd.DataFrame, columns: str | None) -> pd.DataFrame:
    """`df` cut to `columns` (comma-separated names, in that order); one error line for a name it lacks."""
    if columns is None:
        return df
    names = [c.strip() for c in columns.split(",") if c.strip()]
    missing = [c for c in names if c not in df]
    if missing or not names:
        raise fail(f"--columns {','.join(missing) or columns!r}: no such column (the columns: {', '.join(df)})")
    out = df[names]
    out.attrs.update(df.attrs)
    return out


def _filters(host: list[str] | None, port: list[str] | None, proto: str | None, service: list[str] | None,
             sort: str | None, limit: int | None) -> Filters:  # fmt: skip
    """The query filters of the command line, as Inventory's keyword arguments."""
    return {"host": host, "port": port, "proto": proto, "service": service, "sort": sort, "limit": limit}


StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Count only servers whose SYN-ACK the sensor saw (leave out servers inferred "
        "from their data after a SYN-ACK the sensor missed).",
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
ExitCodeOption = Annotated[bool, typer.Option("--exit-code", help="Exit 1 when the answer is not empty.")]
#: Tables written to a file (-o) are laid out for this many columns.
FILE_TABLE_WIDTH = 160
#: A table piped to another program is not cut: every column whole.
PIPE_TABLE_WIDTH = 1_000_000
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")]


def _emit(answer: pd.DataFrame | Iterable[pd.DataFrame], fmt: Format, output: Path | None, title: str,
          empty: Callable[[], str], columns: str | None = None) -> int:  # fmt: skip
    """Print or write an inventory answer: a DataFrame or an answer's frames
    (Inventory.frames, written one after another: memory follows a frame);
    `empty` says what a table shows for no rows (asked only then); `columns`
    cuts every frame to those (see _columns). Returns the rows of the answer."""
    import pandas as pd

    from synack.inventory import export, text_table
    from synack.inventory.answer_stream import joined

    if fmt is Format.parquet and output is None:
        raise fail("--format parquet needs -o FILE")
    frames = _one_line_errors(iter([answer] if isinstance(answer, pd.DataFrame) else answer), columns)
    first = next(frames)
    if first.attrs.get("whole_days"):
        days = first.attrs["whole_days"]
        which = "that day is" if len(days) == 1 else "those days are"
        say(f"note: the records of {', '.join(days)} were pruned: {which} answered whole, not cut at the range's edge")
    everything = itertools.chain([first], frames)

    def table(f: Any, width: int) -> int:
        flexible = _MAX_WIDTHS if width < PIPE_TABLE_WIDTH else {}  # a pipe gets replies whole
        if to_terminal:  # TERMINAL_ROWS rows shown, the others counted
            kept, rows = [], 0
            for frame in everything:
                kept += [frame.head(TERMINAL_ROWS - rows)] if rows < TERMINAL_ROWS else []
                rows += len(frame)
            parts = iter([joined(kept)])
        else:  # every row; an answer of several frames as one table a frame, counted at the end
            parts, rows = everything, -1
        part = next(parts)
        following = next(parts, None)
        if following is None and not len(part):
            f.write(empty() + "\n")
            return 0
        counted = f" ({rows if rows >= 0 else len(part)})" if following is None else ""
        f.write("\n".join(text_table.render(_table_view(part), title + counted, width, flexible)) + "\n")
        written = len(part)
        for more in itertools.chain([following] if following is not None else [], parts):
            if len(more):  # a frame at a time: its own column widths, under a blank line
                f.write("\n" + "\n".join(text_table.render(_table_view(more), "", width, flexible)[1:]) + "\n")
                written += len(more)
        if to_terminal and written < rows:
            f.write(f"... {plural(rows - written, 'more row')} not shown: narrow the question "
                    "(--host, --port, --limit) or write them all (-f csv -o FILE, or a pipe)\n")  # fmt: skip
        elif counted == "":
            f.write(f"({plural(written, 'row')})\n")
        f.write("\n")
        return max(rows, written)

    def write(f: Any, width: int) -> int:
        if fmt is Format.table:
            return table(f, width)
        writers: dict[Format, Callable[[Iterable[pd.DataFrame], Any], int]] = {
            Format.csv: export.write_csv, Format.json: export.write_json, Format.jsonl: export.write_jsonl,
            Format.parquet: export.write_parquet,
        }  # fmt: skip
        return writers[fmt](everything, f)

    to_terminal = output is None and out.is_terminal
    if output is None:
        # A terminal gets its width and TERMINAL_ROWS rows; a pipe every row and column, whole (a program reads it).
        return write(
            out.file if fmt is Format.table else sys.stdout, out.width if out.is_terminal else PIPE_TABLE_WIDTH
        )
    try:
        with export.replacing(output, binary=fmt is Format.parquet) as f:
            rows = write(f, FILE_TABLE_WIDTH)
    except OSError as e:
        raise fail(f"cannot write {output}: {e.strerror or e}") from None
    say(f"{plural(rows, 'row')} written to {output}")
    return rows


def _one_line_errors(frames: Iterator[pd.DataFrame], columns: str | None) -> Iterator[pd.DataFrame]:
    """`frames` cut to `columns`, an error a user or a store can cause while
    they are read being one line (as _answer makes it); the heap given back
    after each (ingest.heap)."""
    from synack.ingest import heap

    try:
        for frame in frames:
            yield _columns(frame, columns)
            del frame
            heap.give_back()
    except SynackError as e:
        raise fail(str(e)) from None


#: The one service column of a table: Zeek's detected services, else the port's IANA name marked "*".
ZEEK_OR_IANA = "service (*IANA)"
_SHORT_NAMES = {
    "server_h": "server", "client_h": "client", "port_name": "service (IANA)", "first_seen": "first seen",
    "last_seen": "last seen", "connections": "conns", "server_reply": "reply", "also_served": "served",
}  # fmt: skip


#: Rows a table shows on a terminal (a pipe or a file gets them all).
TERMINAL_ROWS = 1000
#: Free-text columns are cut in a table (the CSV/JSON output has them whole).
_MAX_WIDTHS = {"reply": 30, ZEEK_OR_IANA: 16, "service (IANA)": 16, "identity": 30, "before": 24, "after": 24}


def _mark(view: pd.DataFrame, column: str, when: bool, text: str) -> list[str] | None:
    """Per row, `text` where the flag `column` equals `when` ("" elsewhere); None when no row is marked."""
    if column not in view or not (view[column] == when).any():
        return None
    return [text if flag == when else "" for flag in view[column]]


def _table_view(df: pd.DataFrame) -> pd.DataFrame:
    """A view for a 100-column terminal: port/proto in one column, one
    service column (Zeek's detected services, else the IANA name marked *), dates
    without times where a row spans a period, sensors left to CSV/JSON, what
    the server is in one `identity` column (when any row has one)."""
    from synack.inventory.identities import folded

    view = df.copy()
    if "server_p" in view and "proto" in view:
        view.insert(list(view.columns).index("server_p"), "port", view["server_p"].astype(str) + "/" + view["proto"])
        view = view.drop(columns=["server_p", "proto"])
    if "services" in view and "port_name" in view:
        names = view["port_name"].fillna("")
        iana = (names + "*").where(names != "", "")
        view["port_name"] = view["services"].where(view["services"] != "", iana)
        view = view.drop(columns=["services"]).rename(columns={"port_name": ZEEK_OR_IANA})
    ranged = df.attrs.get("since") is not None  # "new" says something only within a range that has a start
    marks = [m for m in (_mark(view, "new", True, "new") if ranged else None,
                         _mark(view, "synack_seen", False, "no SYN-ACK"),
                         _mark(view, "answers_all", True, "answers all")) if m is not None]  # fmt: skip
    view = view.drop(columns=[c for c in ("synack_seen", "answers_all", "new", "first_in_range") if c in view])
    if marks:
        view["note"] = [", ".join(t for t in texts if t) for texts in zip(*marks)]
    if "first_seen" in view and "last_seen" in view:
        for column in ("first_seen", "last_seen"):
            view[column] = view[column].dt.strftime("%Y-%m-%d").fillna("")
        view = view.drop(columns=[c for c in ("sensors",) if c in view])
    return folded(view).rename(columns=_SHORT_NAMES)


def _inventory(store: str | None, ledger: Path | None, nets: str | None, sensor: str | None,
               allow: Path | None = None, as_of: str | None = None, *, note_sensors: bool = True,
               strict: bool = False) -> Inventory:  # fmt: skip
    """The Inventory a query command asks (settings resolved, notes said); a bad setting is one error line."""
    from synack.inventory import Inventory
    from synack.inventory.store_reader import snapshot_of

    bound_memory()
    try:
        snap = snapshot_of(located(store, ledger))  # the one read of the ledger behind this command's answer
    except SynackError as e:
        raise fail(str(e)) from None
    _note_upgrade(snap)
    if note_sensors:
        _note_unknown_sensors(snap, sensor)
    try:
        return Inventory(snap, nets=setting(nets, "SYNACK_NETS", "nets", None), sensors=sensor,
                         allow=setting(allow, "SYNACK_ALLOW", "allow", None),
                         as_of=setting(as_of, "SYNACK_AS_OF", "as_of", None), strict=strict)  # fmt: skip
    except SynackError as e:
        raise fail(str(e)) from None


def _answer(query: Callable[[], Answer]) -> Answer:
    """Run one query; an error a user or a store can cause is one line (a bug in synack is not caught here)."""
    try:
        return query()
    except SynackError as e:
        raise fail(str(e)) from None


def _in_range(inv: Inventory, since: str | None, until: str | None) -> str:
    """'in this range', spelled out: the UTC range a query of `inv` used (ages
    like 7d count back from its as_of) and the store's newest record, for an empty answer."""
    from synack.inventory.dailies import sensor_days

    start, end = inv.when(since), inv.when(until)
    lo = f"{start:%Y-%m-%d %H:%M}" if start is not None else "the first record"
    hi = f"{end if end is not None else inv.as_of:%Y-%m-%d %H:%M}"
    as_of = "" if end is not None else "the query's as-of time; "
    newest = max((t for *_, t in sensor_days(inv.store)), default=None)
    when = dt.datetime.fromtimestamp(newest / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M") if newest else "none"
    return f"from {lo} to {hi} UTC ({as_of}the store's newest record: {when})"


def _note_unknown_sensors(store_dir: Snapshot, sensors: str | None) -> None:
    """Say in one line when --sensor names a sensor the store has no records of (a typo answers nothing)."""
    from synack.inventory.dailies import sensor_days

    if not sensors:
        return
    try:
        known = {sensor for _, sensor, *_ in sensor_days(store_dir)}
    except SynackError as e:
        raise fail(str(e)) from None
    unknown = [s for s in (s.strip() for s in sensors.split(",")) if s and s not in known]
    if unknown:
        import difflib

        names = sorted(k for k in known if k)
        close = sorted({m for u in unknown for m in difflib.get_close_matches(u, names)})[:3]
        if close:
            hint = f"did you mean {', '.join(map(repr, close))}?"
        elif 0 < len(names) <= 5:
            hint = f"its sensors: {', '.join(map(repr, names))}"
        else:
            hint = f"it has {len(names)} named sensors"
        say(f"note: the store holds no records from sensor {', '.join(map(repr, unknown))} ({hint})")


def _note_upgrade(store_dir: Snapshot) -> None:
    """Say in one line when the store's aggregates are answered from memory."""
    from synack.inventory.dailies import upgrade_needed

    try:
        needed = upgrade_needed(store_dir)
    except SynackError as e:
        raise fail(str(e)) from None
    if needed:
        say(
            f"note: {store_dir} was written by an older synack; answering from its records in memory "
            "(run 'synack rebuild' once to make queries fast)"
        )


@app.command()
def rebuild(
    store: StoreOption = None, ledger: LedgerOption = None,
    engine: EngineOption = None, scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
) -> None:  # fmt: skip
    """Recompute every partial aggregate from the stored records (after an upgrade, or to repair them).

    Example: synack rebuild --store /var/lib/synack"""
    from synack.ingest.engines import rebuild_store

    bound_memory()
    store_dir = located(store, ledger)
    _require_ledger(store_dir)
    try:
        days = rebuild_store(store_dir, _engine(engine, scheduler, workers))
    except SynackError as e:
        raise fail(str(e)) from None
    out.print(f"rebuilt the aggregates of {len(days)} days", markup=False, soft_wrap=True)


def _json_value(value: Any) -> str:
    """A value JSON has no type for: a time as ISO 8601 (the one time format of --json), else its text."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds" if not value.microsecond else "microseconds")
    return str(value)


@app.command()
def status(
    store: StoreOption = None,
    ledger: LedgerOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of lines.")] = False,
) -> None:
    """What the store holds: days, records, and per sensor its records and newest record.

    Example: synack status --json"""
    import json

    inv = _inventory(store, ledger, None, None)
    info = _answer(inv.status)
    if as_json:
        out.file.write(json.dumps(info, default=_json_value, indent=1) + "\n")
        return
    days = f"{info['days']} days, {info['first_day']} to {info['last_day']}" if info["days"] else "no days"
    out.print(f"{info['store']}: {days}, {info['records']:,} records (ledger version {info['ledger_version']}, "
              f"{info['monthly_rollups']} monthly roll-ups, sightings of {len(info['sightings_years'])} "
              f"{'year' if len(info['sightings_years']) == 1 else 'years'}"
              + (f", {plural(info['pruned_days'], 'day')} pruned" if info["pruned_days"] else "") + ")",
              markup=False, soft_wrap=True)  # fmt: skip
    for sensor, entry in sorted(info["sensors"].items()):
        out.print(visible(f"  sensor {sensor or '(unnamed)'}: {entry['records']:,} records, newest "
                          f"{entry['newest']:%Y-%m-%d %H:%M:%S} UTC"), markup=False, soft_wrap=True)  # fmt: skip
    for host, ports in info["hosts_answering_all"].items():
        out.print(visible(f"  host {host} answered on {ports:,} TCP ports on {info['last_day']}, most without data "
                          "(a SYN proxy, tarpit or honeypot?)"), markup=False, soft_wrap=True)  # fmt: skip
    out.print(f"  {info['sources']} log sources, last ingest {info['last_ingest'] or 'never'}; "
              f"{info['quarantined_lines']:,} lines quarantined; {info['sensor_notices']:,} sensor notices; "
              f"{info['identity_facts']:,} identity facts", markup=False, soft_wrap=True)  # fmt: skip
    settings = info["settings"]
    nets = ", ".join(settings["nets"]) if isinstance(settings["nets"], list) else settings["nets"]
    out.print(f"  settings: nets {nets}; sensors {settings['sensors']}; {settings['allowlist_entries']} allowlist "
              "entries", markup=False, soft_wrap=True)  # fmt: skip


@app.command()
def check(
    store: StoreOption = None,
    ledger: LedgerOption = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Move stray and damaged files aside, rebuild what can be rebuilt.")
    ] = False,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Rebuild the ledger from the store's files: after restoring an older ledger from a backup, or "
            "when it was lost or damaged (the old one is kept beside it).",
        ),
    ] = False,
) -> None:
    """Verify that the store's ledger and files agree (exit 1 when they do not); --repair fixes what it can.

    Example: synack check --repair"""
    from synack.ingest.store import Store
    from synack.ingest.store_check import check_store

    store_dir = located(store, ledger)
    if adopt:
        _adopt(store_dir, repair)
        return
    _require_ledger(store_dir)
    try:
        with Store.open(store_dir, create=False) as opened:
            report = check_store(opened, repair=repair)
            after = check_store(opened) if report.repaired else report
    except SynackError as e:
        raise fail(str(e)) from None
    for problem in report.problems:
        say(f"problem: {problem}")
    for done in report.repaired:
        say(f"repaired: {done}")
    if after.ok:
        out.print(f"{store_dir}: ledger and {after.files_checked} files agree", markup=False, soft_wrap=True)
        return
    hint = "" if repair else "; 'synack check --repair' fixes what can be fixed"
    say(f"{len(after.problems)} problems left{hint}")
    raise typer.Exit(code=EXIT_ATTENTION)


def _adopt(store_dir: StoreFS, repair: bool) -> None:
    """`check --adopt`: rebuild the ledger from the store's files, then check the result."""
    from synack.ingest.store import Store
    from synack.ingest.store_adopt import adopt_store
    from synack.ingest.store_check import check_store

    if repair:
        raise fail("--adopt and --repair are two operations: run 'synack check --adopt', then 'synack check'")
    bound_memory()
    try:
        report = adopt_store(store_dir)
        with Store.open(store_dir, create=False) as opened:
            after = check_store(opened)
    except SynackError as e:
        raise fail(str(e)) from None
    for line in report.lines:
        say(f"adopt: {line}")
    if not after.ok:
        for problem in after.problems:
            say(f"problem: {problem}")
        say(f"{len(after.problems)} problems left; 'synack check --repair' fixes what can be fixed")
        raise typer.Exit(code=EXIT_ATTENTION)
    out.print(f"{store_dir}: ledger adopted; it and {after.files_checked} files agree", markup=False, soft_wrap=True)


class QuarantineAction(StrEnum):
    list = "list"
    replay = "replay"


QuarantineActionArgument = Annotated[
    QuarantineAction,
    typer.Argument(help="list: count the lines set aside, by file and reason; replay: read them again."),
]


@app.command()
def quarantine(
    action: QuarantineActionArgument = QuarantineAction.list,
    store: StoreOption = None, ledger: LedgerOption = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Replay only lines whose reason holds this "
                                                     "text (repeatable; e.g. 'in the future').")] = None,
    clock_skew: ClockSkewOption = DEFAULT_CLOCK_SKEW_SECONDS,
    fmt: FormatOption = Format.table, output: OutputOption = None,
) -> None:  # fmt: skip
    """The lines ingest set aside: count them, or replay them through today's rules (exactly once).

    Example: synack quarantine replay --reason "in the future" """
    import pandas as pd

    from synack.ingest.quarantine_replay import replay
    from synack.ingest.store import Store
    from synack.inventory.store_reader import snapshot_of

    store_dir = located(store, ledger)
    _require_ledger(store_dir)
    if action is QuarantineAction.list:
        try:
            counts = snapshot_of(store_dir).quarantine_counts()
        except SynackError as e:
            raise fail(str(e)) from None
        df = pd.DataFrame(counts, columns=["file", "reason", "lines"])
        _emit(df, fmt, output, "Quarantined lines", lambda: "no lines quarantined")
        return
    try:
        with Store.open(store_dir, create=False) as opened:
            done = replay(opened, reasons=reason, clock_skew=clock_skew)
    except SynackError as e:
        raise fail(str(e)) from None
    for line in done.skipped:
        say(f"not replayed: {line}")
    out.print(
        f"replayed {plural(done.replayed, 'line')} of {plural(done.files, 'quarantine file')}: "
        f"{plural(done.rows, 'record')} ingested; {done.still_bad:,} still quarantined",
        markup=False,
        soft_wrap=True,
    )


def _age_days(text: str, option: str) -> int:
    """An age in days or weeks ("30d", "12w") as days; a one-line error for anything else."""
    m = re.fullmatch(r"(\d+)([dw])", text.strip())
    if m is None:
        raise fail(f"{option} {text!r}: give an age in days or weeks (30d, 12w)")
    return int(m.group(1)) * (7 if m.group(2) == "w" else 1)


@app.command()
def prune(
    records_older_than: Annotated[
        str, typer.Option("--records-older-than", help="Delete the records of days older than this age (30d, 12w).")
    ],
    store: StoreOption = None,
    ledger: LedgerOption = None,
) -> None:
    """Delete old days' connection records, keeping their aggregates: every inventory, first sighting and
    new or gone port stays exact (ranges that cut a pruned day are answered to the whole day).

    Example: synack prune --records-older-than 90d"""
    from synack.ingest.retention import prune_records
    from synack.ingest.store import Store
    from synack.inventory.store_reader import as_timestamp

    days = _age_days(records_older_than, "--records-older-than")
    try:
        cut = as_timestamp(f"{days}d")
    except SynackError as e:
        raise fail(str(e)) from None
    assert cut is not None
    store_dir = located(store, ledger)
    _require_ledger(store_dir)
    try:
        with Store.open(store_dir, create=False) as opened:
            done = prune_records(opened, f"{cut:%Y-%m-%d}")
    except SynackError as e:
        raise fail(str(e)) from None
    if done.kept_without_aggregates:
        say(f"kept the records of {len(done.kept_without_aggregates)} days without aggregates: run 'synack rebuild' "
            "first")  # fmt: skip
    out.print(f"pruned the records of {plural(len(done.days), 'day')} before {cut:%Y-%m-%d} ({done.records:,} records, "
              f"{plural(done.files, 'file')}); their aggregates are kept", markup=False, soft_wrap=True)  # fmt: skip


@app.command()
def servers(
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    nets: NetsOption = None, fmt: FormatOption = Format.table, output: OutputOption = None, as_of: AsOfOption = None,
    allow: AllowOption = None, strict: StrictOption = False,
    host: HostOption = None, port: PortOption = None, proto: ProtoOption = None, service: ServiceOption = None,
    sort: SortOption = None, limit: LimitOption = None, columns: ColumnsOption = None,
) -> None:  # fmt: skip
    """Server ports: which host:port answered (SYN-ACK, or a UDP reply), with first/last seen, counts
    and what the server is (product, version, TLS and host names from the sensor's identity logs).

    Example: synack servers --since 7d --port 3389 --nets all   (who serves RDP)"""
    inv = _inventory(store, ledger, nets, sensor, allow, as_of, strict=strict)
    frames = inv.frames("servers", since, until, **_filters(host, port, proto, service, sort, limit))
    _emit(frames, fmt, output, "Server ports", lambda: f"no server ports {_in_range(inv, since, until)}", columns)


@app.command()
def clients(
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    nets: NetsOption = None, fmt: FormatOption = Format.table, output: OutputOption = None, as_of: AsOfOption = None,
    allow: AllowOption = None, strict: StrictOption = False,
    detail: Annotated[bool, typer.Option("--detail", help="One row per client, server and port.")] = False,
    host: HostOption = None, port: PortOption = None, proto: ProtoOption = None, service: ServiceOption = None,
    sort: SortOption = None, limit: LimitOption = None,
) -> None:  # fmt: skip
    """Client ports: which host speaks which service port, one row per client and port.

    Example: synack clients --host 10.1.0.11 --detail   (what one host connects to)"""
    inv = _inventory(store, ledger, nets, sensor, allow, as_of, strict=strict)
    frames = inv.frames("client_pairs" if detail else "clients", since, until,
                        **_filters(host, port, proto, service, sort, limit))  # fmt: skip
    _emit(frames, fmt, output, "Client ports", lambda: f"no client ports {_in_range(inv, since, until)}")


@app.command()
def closed(
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    nets: NetsOption = None, fmt: FormatOption = Format.table, output: OutputOption = None, as_of: AsOfOption = None,
    allow: AllowOption = None, strict: StrictOption = False,
    host: HostOption = None, port: PortOption = None, proto: ProtoOption = None, service: ServiceOption = None,
    sort: SortOption = None, limit: LimitOption = None,
) -> None:  # fmt: skip
    """Closed ports: SYNs answered with RST (what scanners probe), most probed first.

    Example: synack closed --since 1d --limit 20"""
    inv = _inventory(store, ledger, nets, sensor, allow, as_of, strict=strict)
    df = _answer(lambda: inv.closed(since, until, **_filters(host, port, proto, service, sort, limit)))
    _emit(df, fmt, output, "Closed ports", lambda: f"no closed ports probed {_in_range(inv, since, until)}")


@app.command("new-ports")
def new_ports(
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    nets: NetsOption = None, allow: AllowOption = None, fmt: FormatOption = Format.table, output: OutputOption = None,
    client_ports: Annotated[bool, typer.Option("--clients", help="New client ports instead of server ports.")] = False,
    show_allowed: Annotated[bool, typer.Option(help="Show allowlisted ports too, marked.")] = False,
    exit_code: ExitCodeOption = False, as_of: AsOfOption = None, strict: StrictOption = False,
    host: HostOption = None, port: PortOption = None, proto: ProtoOption = None, service: ServiceOption = None,
    sort: SortOption = None, limit: LimitOption = None, columns: ColumnsOption = None,
) -> None:  # fmt: skip
    """New server ports: first seen in the whole store within [since, until) (default: the last day).

    Example: synack new-ports --since 2026-11-21 --allow allow.txt --exit-code"""
    inv = _inventory(store, ledger, nets, sensor, allow, as_of, strict=strict)
    start = since if since is not None else "1d"
    filters = _filters(host, port, proto, service, sort, limit)
    frames = inv.frames("new_clients" if client_ports else "new_servers", start, until, show_allowed=show_allowed,
                        **filters)  # fmt: skip
    what = "client" if client_ports else "server"
    rows = _emit(frames, fmt, output, f"New {what} ports",
                 lambda: f"no new {what} ports {_in_range(inv, start, until)}", columns)  # fmt: skip
    if exit_code and rows:
        raise typer.Exit(code=EXIT_ATTENTION)


@app.command("gone-ports")
def gone_ports(
    store: StoreOption = None, ledger: LedgerOption = None,
    until: UntilOption = None, sensor: SensorOption = None, nets: NetsOption = None,
    fmt: FormatOption = Format.table, output: OutputOption = None,
    idle_days: Annotated[float, typer.Option(min=0, help="Gone when not seen for this many days.")] = 7,
    exit_code: ExitCodeOption = False, as_of: AsOfOption = None, strict: StrictOption = False,
    host: HostOption = None, port: PortOption = None, proto: ProtoOption = None, service: ServiceOption = None,
    sort: SortOption = None, limit: LimitOption = None, columns: ColumnsOption = None,
) -> None:  # fmt: skip
    """Gone server ports: seen before, silent for --idle-days at --until (default: now, or --as-of).

    Example: synack gone-ports --idle-days 14 --as-of newest"""
    inv = _inventory(store, ledger, nets, sensor, as_of=as_of, strict=strict)
    filters = _filters(host, port, proto, service, sort, limit)
    df = _columns(_answer(lambda: inv.gone_servers(until, idle_days=idle_days, **filters)), columns)
    _emit(df, fmt, output, "Gone server ports", lambda: "no gone server ports")
    if exit_code and not df.empty:
        raise typer.Exit(code=EXIT_ATTENTION)


@app.command("changed-ports")
def changed_ports(
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    nets: NetsOption = None, fmt: FormatOption = Format.table, output: OutputOption = None, as_of: AsOfOption = None,
    exit_code: ExitCodeOption = False,
    host: HostOption = None, port: PortOption = None, sort: SortOption = None, limit: LimitOption = None,
    columns: ColumnsOption = None,
) -> None:  # fmt: skip
    """Server ports whose software (product, version) or TLS certificate changed in [since, until)
    (default: the last day), with before, after and when, from the sensor's identity logs.

    Example: synack changed-ports --since 30d --nets all"""
    inv = _inventory(store, ledger, nets, sensor, as_of=as_of)
    start = since if since is not None else "1d"
    filters = _filters(host, port, None, None, sort, limit)
    df = _columns(_answer(lambda: inv.changed_ports(start, until, **filters)), columns)
    _emit(df, fmt, output, "Changed server ports", lambda: f"no changed server ports {_in_range(inv, start, until)}")
    if exit_code and not df.empty:
        raise typer.Exit(code=EXIT_ATTENTION)


@app.command()
def notices(
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    nets: NetsOption = None, fmt: FormatOption = Format.table, output: OutputOption = None, as_of: AsOfOption = None,
    host: HostOption = None, port: PortOption = None, proto: ProtoOption = None, service: ServiceOption = None,
    sort: SortOption = None, limit: LimitOption = None,
) -> None:  # fmt: skip
    """The sensor's own notices of new server ports (notice.zeek's, read from notice.log), oldest first.

    Example: synack notices --since 7d --host 10.1.0.0/24"""
    inv = _inventory(store, ledger, nets, sensor, as_of=as_of)
    df = _answer(lambda: inv.notices(since, until, **_filters(host, port, proto, service, sort, limit)))
    _emit(df, fmt, output, "Sensor notices", lambda: f"no sensor notices {_in_range(inv, since, until)}")


class HostFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


@app.command()
def host(
    address: Annotated[str, typer.Argument(help="The host's IP address.")],
    store: StoreOption = None, ledger: LedgerOption = None,
    since: SinceOption = None, until: UntilOption = None, sensor: SensorOption = None,
    fmt: Annotated[HostFormat, typer.Option("--format", "-f", help="Output format.")] = HostFormat.table,
    output: OutputOption = None, as_of: AsOfOption = None, allow: AllowOption = None, strict: StrictOption = False,
) -> None:  # fmt: skip
    """Everything the store knows of one host: ports served and refused, what it connects to, new and gone ports.

    Example: synack host 10.1.0.11 --since 30d -f html -o host.html"""
    import json

    inv = _inventory(store, ledger, None, sensor, allow, as_of, strict=strict)
    view = _answer(lambda: inv.host(address, since, until))
    if fmt == HostFormat.table:
        from synack.inventory.host_view import SECTIONS

        if output is not None:
            raise typer.BadParameter("a table goes to the terminal; use -f json or -f html with -o", param_hint="'-o'")
        say_line = f"host {view.address}: sensors {', '.join(view.sensors) or 'none'}"
        out.print(visible(say_line), markup=False, soft_wrap=True)
        for name, title in SECTIONS.items():
            _emit(view.tables[name], Format.table, None, title, lambda: "none")
        return
    text = json.dumps(view.to_json(), indent=1) + "\n" if fmt == HostFormat.json else view.to_html()
    if output is None:
        out.file.write(text)
        return
    from synack.inventory import export

    try:
        with export.replacing(output) as f:
            f.write(text)
    except OSError as e:
        raise fail(f"cannot write {output}: {e.strerror or e}") from None
    say(f"host {view.address} written to {output}")


@app.command("export-known")
def export_known(
    output: Annotated[Path, typer.Option("--output", "-o", help="The baseline file to write (replaced whole).")],
    store: StoreOption = None, ledger: LedgerOption = None,
    sensor: SensorOption = None, nets: NetsOption = None, allow: AllowOption = None,
    force: Annotated[bool, typer.Option(help="Write the baseline even when it is empty or drops more than half "
                                        "of the current file's server ports.")] = False,
    strict: StrictOption = False,
    filter_file: Annotated[Path | None, typer.Option(
        "--filter", help="Write the known server ports to this file as a Bloom filter (a few MB per million "
        "ports; notice.zeek's SynAck::known_filter_file) and only the allowlist's ranges to --output.")] = None,
) -> None:  # fmt: skip
    """Write the known server ports and the allowlist as the Zeek table the package's notice.zeek reads.

    A sensor or network that matches nothing, or a baseline that would drop more than half of the current
    file's server ports, is refused (exit 2, the file untouched) unless --force. Beyond some 100,000 server
    ports, --filter keeps Zeek's memory in megabytes (a false positive, a notice not raised, in a million).

    Example: synack export-known -o /opt/zeek/share/synack/known.tsv --allow allow.txt"""
    inv = _inventory(store, ledger, nets, sensor, allow, note_sensors=False, strict=strict)  # unknown sensor: error
    done = _answer(lambda: inv.export_known(output, force=force, filter_path=filter_file))
    where = f"{output}" if done.filter is None else f"{done.filter} (a Bloom filter) and {output}"
    say(f"{done.known} known server ports and {done.expected} expected port ranges written to {where}")


#: The report's headline names (plural) in the singular, for a figure of one.
_SINGULAR = {"new server ports": "new server port", "new client ports": "new client port",
             "gone server ports": "gone server port", "hosts serving": "host serving",
             "ports closed but probed": "port closed but probed"}  # fmt: skip


def _figure(value: int, name: str) -> str:
    """One headline figure: "1 new server port", "2,000 hosts serving"."""
    return f"{value:,} {_SINGULAR.get(name, name) if value == 1 else name}"


@app.command()
def report(
    store: StoreOption = None, ledger: LedgerOption = None,
    date: Annotated[
        str | None, typer.Option("--date", help="The day to report (default: yesterday, UTC, before --as-of).")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    sensor: SensorOption = None,
    nets: NetsOption = None,
    allow: AllowOption = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the report files.")] = Path("."),
    idle_days: Annotated[float, typer.Option(min=0, help="Gone when not seen for this many days.")] = 7,
    expect_sensor: Annotated[
        str | None, typer.Option(help="Sensors that must send data (comma-separated), besides those seen before.")
    ] = None,
    max_rows: Annotated[int, typer.Option(min=1, help="Rows of a table shown on the page (the CSV has all).")] = 50,
    as_of: AsOfOption = None,
    strict: StrictOption = False,
) -> None:  # fmt: skip
    """Write the daily report: report-DATE.html (one self-contained page), CSV per table, and JSON.

    Exits 1 (after writing the files) when the period holds no records or an expected sensor sent none.

    Example: synack report --date 2026-11-21 -o /var/www/synack"""
    from synack.inventory.daily_report import build_report
    from synack.inventory.report_files import write_report

    bound_memory()
    if date is not None and (since is not None or until is not None):
        raise typer.BadParameter("give either --date or --since/--until, not both", param_hint="'--date'")
    inv = _inventory(store, ledger, nets, sensor, allow, as_of, strict=strict)  # one snapshot for the report
    try:
        built = build_report(
            inv, date, since=since, until=until, idle_days=idle_days, max_rows=max_rows,
            expect_sensors=[s.strip() for s in (expect_sensor or "").split(",") if s.strip()],
        )  # fmt: skip
        if not output.is_dir():
            raise fail(f"{output} is not a directory: create it first (the report writes several files there)")
        written = write_report(built, output)
    except SynackError as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"cannot write the report to {output}: {e.strerror}") from None
    problems = built.health.problems(built.end)
    figures = "; ".join(problems) if problems else ", ".join(_figure(v, k) for k, (v, _) in built.headline.items())
    # One line each, whatever the width: the journal keeps lines whole.
    out.print(f"report {built.label}: {figures}", markup=False, soft_wrap=True)
    out.print(f"wrote {written[0]} and {len(written) - 1} CSV/JSON files", markup=False, soft_wrap=True)
    if problems:
        raise typer.Exit(code=EXIT_ATTENTION)


@app.command()
def watch(
    logdir: Annotated[Path, typer.Argument(help="Zeek log directory (zeekctl's logs/: current/, dated archives).")],
    store: StoreOption = None, ledger: LedgerOption = None,
    sensor: SensorNameOption = None,
    interval: Annotated[float, typer.Option(help="New lines are in the store within this many seconds.")] = 30,
    retire_grace: Annotated[float, typer.Option(
        min=0, envvar="SYNACK_RETIRE_GRACE",
        help="Seconds a file that compaction replaced stays readable for queries that started before it "
             "(env SYNACK_RETIRE_GRACE).")] = 900,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Tail the live conn.log, not only archives.")] = True,
    once: Annotated[bool, typer.Option("--once", help="One backfill pass, then exit (for cron).")] = False,
    chunk_bytes: Annotated[int, typer.Option(hidden=True, help="Bytes per committed chunk (tuning, tests).")] = 0,
    clock_skew: ClockSkewOption = DEFAULT_CLOCK_SKEW_SECONDS,
    max_line_bytes: MaxLineOption = DEFAULT_MAX_LINE_BYTES,
    within_tree: WithinTreeOption = False,
    prune_records_older_than: Annotated[
        str | None,
        typer.Option(
            help="After each pass that committed records, delete the records of days older than this (30d, 12w), "
            "keeping their aggregates (as 'synack prune')."
        ),
    ] = None,
    export_known: Annotated[
        Path | None,
        typer.Option(help="Keep this baseline for the sensor's notice.zeek current (as 'synack export-known' "
                     "writes it, with --nets and --allow) after the backfill and each pass that adds records."),
    ] = None,
    export_filter: Annotated[
        Path | None,
        typer.Option(help="With --export-known: its server ports go to this file as a Bloom filter "
                     "(as 'synack export-known --filter')."),
    ] = None,
    nets: NetsOption = None,
    allow: AllowOption = None,
) -> None:  # fmt: skip
    """Follow a live Zeek log directory: backfill, then ingest new lines and rotated archives, exactly once.

    Example: synack watch /opt/zeek/logs --store /var/lib/synack --export-known /opt/zeek/share/known.tsv"""
    import json
    import signal
    import threading

    from synack.ingest.log_source import DEFAULT_CHUNK_BYTES
    from synack.ingest.watch import WatchOptions
    from synack.ingest.watch import watch as follow

    bound_memory()
    if not interval > 0:
        raise typer.BadParameter(f"must be more than 0 seconds, not {interval}", param_hint="'--interval'")
    if not logdir.is_dir():
        raise fail(f"not a directory: {logdir}")
    store_dir = located(store, ledger)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    errors: list[dict[str, Any]] = []

    def log(record: dict[str, Any]) -> None:
        if record.get("event") == "error":
            errors.append(record)
        stamped = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **record}
        say(json.dumps(stamped))

    options = WatchOptions(
        interval=interval, live=live, once=once, sensor=setting(sensor, "SYNACK_SENSOR", "sensor", None),
        chunk_bytes=chunk_bytes or DEFAULT_CHUNK_BYTES, clock_skew=clock_skew, retire_grace=retire_grace,
        max_line_bytes=max_line_bytes, within_tree=within_tree,
        prune_records_days=None if prune_records_older_than is None else _age_days(
            prune_records_older_than, "--prune-records-older-than"),
    )  # fmt: skip
    after_pass = None
    if export_filter is not None and export_known is None:
        raise typer.BadParameter(
            "needs --export-known (the table of the allowlist's ranges)", param_hint="'--export-filter'"
        )
    if export_known is not None:
        from synack.inventory import Inventory

        nets_setting = setting(nets, "SYNACK_NETS", "nets", None)
        allow_setting = setting(allow, "SYNACK_ALLOW", "allow", None)
        try:
            Inventory(store_dir, nets=nets_setting, allow=allow_setting)  # a bad setting fails before the watch
        except SynackError as e:
            raise fail(str(e)) from None

        def after_pass(_: Any) -> None:
            try:
                done = Inventory(store_dir, nets=nets_setting, allow=allow_setting).export_known(
                    export_known, filter_path=export_filter
                )
            except SynackError as e:  # the watch goes on; the next pass tries again
                log({"event": "error", "file": str(export_known), "message": str(e)})
                return
            log({"event": "exported", "file": str(done.path), "known": done.known, "expected": done.expected})

    try:
        follow(logdir, store_dir, options, stop=stop, log=log, after_pass=after_pass)
    except SynackError as e:
        raise fail(str(e)) from None
    if once and errors:  # cron sees a failed pass: an export that failed, a file that could not be read
        raise typer.Exit(code=EXIT_ERROR)


def sample_dir() -> Path:
    """The bundled sample Zeek log directory."""
    return Path(str(resources.files("synack.samples") / "zeek"))


@app.command()
def demo() -> None:
    """Ingest the bundled sample logs into a temporary store and show what they hold.

    Example: synack demo"""
    from synack.inventory import Inventory
    from synack.samples.generate import DAYS

    bound_memory()
    logs = sample_dir()
    with tempfile.TemporaryDirectory(prefix="synack-demo-") as tmp:
        store_dir = Path(tmp) / "store"
        try:
            summary = _run_ingest([logs], store_dir, None, show_progress=False)
            inv = Inventory(store_dir)
            found = inv.servers()
            last = DAYS[-1]
            new = inv.new_servers(last, last + dt.timedelta(days=1))
        except (SynackError, ValueError) as e:
            raise fail(str(e)) from None
        out.print(f"samples: {logs}", markup=False, soft_wrap=True)
        out.print(_summary_line(summary), markup=False, soft_wrap=True)
        _emit(found, Format.table, None, "Server ports, all sample days", lambda: "no server ports")
        _emit(new, Format.table, None, f"New server ports on {last}", lambda: "no new server ports")


# What the imports above created lives as long as the process: kept out of
# the collector's sight, it is not scanned again at every full collection
# and at exit (about 0.06 s of each short command).
gc.freeze()


#: The exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it).
EXIT_TERMINATED = 143


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a `timeout`, a service manager) stops a command as Ctrl-C
    does: by an exception, so its temporary files (a band split, sorted
    runs, pairs on disk: gigabytes for a year's answer) are removed on the
    way out, not left behind as the default action leaves them."""
    raise SystemExit(EXIT_TERMINATED)


def main() -> None:
    """The `synack` command: the app, with every error as one line.

    An error a user or a log can cause is a SynackError (or an OSError
    naming a file) and prints as one line. Anything else is a bug in
    synack: one line says so and where its full traceback was written.
    """
    for location in _store_arguments():  # scrubbed from the first line printed, whatever fails first
        keep_secret(location)
    signal.signal(signal.SIGTERM, _terminated)  # `watch` stops on it its own way
    try:
        app()
    except SynackError as e:
        say(f"error: {e}")
        sys.exit(EXIT_ERROR)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        say(f"error: {where}{e.strerror or e}")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        report = write_crash_report(traceback.format_exc())
        say(f"error: internal error ({type(e).__name__}: {e}), a bug in synack; the traceback is in {report}")
        sys.exit(EXIT_ERROR)
    finally:
        # Arrow's reader threads are joined now, while Arrow is alive: left to the interpreter's last
        # collection they can abort a finished command at exit ("terminate called without an active
        # exception", SIGABRT; apache/arrow#34314), seen once on `synack check` under load.
        gc.collect()


def _store_arguments() -> list[str]:
    """Every store location this process may have been given: --store values, SYNACK_STORE, and any argument
    that is a URL (a location passed positionally to a library entry point)."""
    found = [os.environ.get("SYNACK_STORE", "")]
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--store" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--store="):
            found.append(arg.split("=", 1)[1])
        elif "://" in arg:
            found.append(arg)
    return [f for f in found if f]


def write_crash_report(text: str) -> Path | str:
    """Write `text` under the store named on the command line (if it exists
    and is writable), else the user's state directory; return its path.
    Credentials of a store location (given on the command line, in the
    environment or seen by this process) are scrubbed from it."""
    from synack.ingest.file_modes import PRIVATE, PRIVATE_DIRECTORY, make_dirs, open_new
    from synack.ingest.store_files import location_secrets, scrubbed

    secrets = _SECRETS + [v for location in _store_arguments() for v in location_secrets(location)]
    text = scrubbed(text, sorted(set(secrets), key=len, reverse=True))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "synack"
    places = [state]
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--store" and i + 1 < len(argv):
            places.insert(0, Path(argv[i + 1]) / "crash")
        elif arg.startswith("--store="):
            places.insert(0, Path(arg.split("=", 1)[1]) / "crash")
    for folder in places:
        try:
            if folder.name == "crash" and not folder.parent.is_dir():
                continue
            make_dirs(folder, PRIVATE_DIRECTORY)
            path = folder / f"crash-{stamp}.txt"
            with open(open_new(path, PRIVATE), "w") as f:  # tracebacks carry paths and values
                f.write(text)
            return path
        except OSError:
            continue
    return "(nowhere: no writable store or state directory)"


if __name__ == "__main__":  # pragma: no cover
    main()
