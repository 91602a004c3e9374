"""The `synack` command line: parses options, calls one library function, prints.

Settings are resolved here and only here, in this order: command-line
option > environment variable > `synack.toml` (in the working directory,
or the file named by SYNACK_CONFIG) > default.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import sys
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.conn_ingest import IngestSummary, ingest_paths
from ingest.errors import SynackError

app = typer.Typer(
    help="Inventory of server ports and client ports from Zeek (and Suricata) logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_STORE = "./synack-store"


def bound_memory() -> None:
    """Process-wide allocator settings that keep an ingest's peak memory flat.

    Arrow's buffers go to the system allocator; glibc keeps at most two
    arenas and serves blocks over 4 MB with mmap (a fixed threshold, so it
    does not creep up), so memory freed by one chunk goes back to the
    system or to the next chunk instead of being cached per thread. This is the process's business, so it is set
    here at the edge, never by the library.
    """
    pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_ARENA_MAX, 2)
            libc.mallopt(_M_MMAP_THRESHOLD, 4 << 20)
        except (OSError, AttributeError):
            pass  # not glibc: the defaults are fine


_M_ARENA_MAX = -8  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3


def _config() -> dict[str, Any]:
    path = Path(os.environ.get("SYNACK_CONFIG", "synack.toml"))
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SynackError(f"cannot read {path}: {e}") from None


def setting(value: Any, env: str, key: str, default: Any) -> Any:
    """Resolve one setting: option > environment > synack.toml > default."""
    if value is not None:
        return value
    if os.environ.get(env):
        return os.environ[env]
    config = _config()
    if key in config:
        return config[key]
    return default


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code=1)


StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory [env SYNACK_STORE; synack.toml 'store'; default ./synack-store]."),
]


def _summary_line(s: IngestSummary) -> str:
    done = [f for f in s.files if f.status != "error"]
    skipped = f", {len(s.skipped)} other logs skipped" if s.skipped else ""
    return (
        f"ingested {len(done)} files{skipped}: {s.rows:,} rows, {s.quarantined:,} quarantined, "
        f"{s.seconds:.2f} s, {s.rows_per_second:,.0f} rows/s"
    )


def _run_ingest(paths: list[Path], store: Path, sensor: str | None, show_progress: bool) -> IngestSummary:
    if not show_progress:
        return ingest_paths(paths, store, sensor=sensor)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None, rows=0)

        def progress(path: Path, rows: int) -> None:
            bar.update(task, description=path.name[:40], rows=rows)

        return ingest_paths(paths, store, sensor=sensor, progress=progress)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="conn logs (.log, .log.gz, JSON) or Zeek log directories.")],
    store: StoreOption = None,
    sensor: Annotated[
        str | None, typer.Option(help="Sensor name for records whose log does not name one [env SYNACK_SENSOR].")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line.")] = False,
) -> None:
    """Ingest Zeek conn logs into the store, exactly once (re-running adds nothing)."""
    bound_memory()
    try:
        store_dir = Path(setting(store, "SYNACK_STORE", "store", DEFAULT_STORE))
        sensor_name = setting(sensor, "SYNACK_SENSOR", "sensor", None)
        summary = _run_ingest(paths, store_dir, sensor_name, err.is_terminal and not quiet)
    except SynackError as e:
        raise fail(str(e)) from None
    if summary.skipped and not quiet:
        names = ", ".join(sorted({p.name.split(".")[0] for p in summary.skipped}))
        err.print(f"skipped {len(summary.skipped)} logs that are not conn logs ({names})", markup=False)
    for f in summary.files:
        if f.status == "error":
            err.print(f"error: {f.message}", markup=False)
        elif f.message and not quiet:
            err.print(f"note: {f.path}: {f.message}", markup=False)
    if summary.quarantined and not quiet:
        err.print(f"{summary.quarantined} lines quarantined: see {store_dir / 'quarantine'}", markup=False)
    out.print(_summary_line(summary), markup=False)
    if summary.errors:
        raise typer.Exit(code=1)


def sample_dir() -> Path:
    """The bundled sample Zeek log directory."""
    return Path(str(resources.files("samples") / "zeek"))


def _reply_text(value: bytes | None, width: int = 40) -> str:
    if not value:
        return ""
    text = value.decode("latin-1").encode("unicode_escape").decode("ascii")
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def demo() -> None:
    """Ingest the bundled sample logs into a temporary store and show what they hold."""
    import inventory
    from samples.generate import DAYS

    logs = sample_dir()
    with tempfile.TemporaryDirectory(prefix="synack-demo-") as tmp:
        store_dir = Path(tmp) / "store"
        try:
            summary = ingest_paths([logs], store_dir)
        except SynackError as e:
            raise fail(str(e)) from None
        out.print(f"samples: {logs}", markup=False)
        out.print(_summary_line(summary), markup=False)
        table = Table(title="Server ports (all days)", title_justify="left")
        for col in ("server", "port", "service", "first seen", "last seen", "conns", "clients"):
            table.add_column(col, no_wrap=True, min_width=len(col))
        table.add_column("server reply", overflow="ellipsis", no_wrap=True, max_width=30)
        for r in inventory.servers(store_dir).itertuples():
            table.add_row(
                r.server_h,
                f"{r.server_p}/{r.proto}",
                r.services,
                f"{r.first_seen:%Y-%m-%d}",
                f"{r.last_seen:%Y-%m-%d}",
                str(r.connections),
                str(r.clients),
                _reply_text(r.server_reply, 30),
            )
        out.print(table)
        last = DAYS[-1]
        new = inventory.new_servers(store_dir, last, last + dt.timedelta(days=1))
        table = Table(title=f"New server ports on {last}", title_justify="left")
        for col in ("sensor", "server", "port", "when detected (UTC)"):
            table.add_column(col, no_wrap=True)
        table.add_column("server reply", overflow="fold")
        for r in new.itertuples():
            table.add_row(
                r.sensor,
                r.server_h,
                f"{r.server_p}/{r.proto}",
                f"{r.first_seen:%Y-%m-%d %H:%M:%S}",
                _reply_text(r.server_reply, 60),
            )
        out.print(table)
        if new.empty:
            out.print("no new server ports", markup=False)


def main() -> None:  # pragma: no cover - console entry for `python cli.py`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
