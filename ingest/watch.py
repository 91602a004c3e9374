"""Following a live Zeek log directory: backfill, then ingest as files change.

The only module that imports watchdog. `watch` holds the store's lock for
its whole life (a second watcher is refused), runs a backfill pass over the
directory, then sleeps until the file system reports a change to a conn log
(or a slow safety-net rescan comes due) and runs another pass. Every pass
is an ordinary exactly-once ingest (ingest_into): complete archives and
unchanged files are skipped from the ledger without being read, the live
`conn.log` is resumed at its committed byte offset, and a rotated archive is
recognized as the log it was. Stopping (stop_event) lets the chunk in hand
commit first; a kill at any instant is recovered by the store on restart.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from synack.ingest.conn_ingest import IngestSummary, ingest_into
from synack.ingest.log_files import find_conn_logs, is_conn_log_name, is_side_log_name
from synack.ingest.log_source import DEFAULT_CHUNK_BYTES
from synack.ingest.retention import prune_records
from synack.ingest.server_identity import IDENTITY_LOGS
from synack.ingest.store import DEFAULT_RETIRE_GRACE, Store
from synack.ingest.store_files import StoreFS
from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_LINE_BYTES

#: A pass with no file-system event runs at least this often (safety net for
#: file systems that do not report events, e.g. some network mounts).
RESCAN_FACTOR = 10

#: Called after every pass that committed something.
AfterPass = Callable[[IngestSummary], None]
#: Receives one structured log record per event worth logging.
Log = Callable[[dict[str, object]], None]

_LIVE_NAMES = ("conn.log", "conn.json", "eve.json", *(f"{log}.{ext}" for log in ("notice", *IDENTITY_LOGS)
                                                       for ext in ("log", "json")))  # fmt: skip


@dataclass
class WatchOptions:
    """How to follow a directory."""

    interval: float = 30.0
    live: bool = True
    once: bool = False
    sensor: str | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS
    #: The longest line read as a record (ingest.value_limits).
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: Follow no symbolic link that leads outside the log directory.
    within_tree: bool = False
    #: Seconds a file compaction replaced stays readable for queries that started before it.
    retire_grace: float = DEFAULT_RETIRE_GRACE
    #: After a pass that committed records, prune the records of days older than this many days (ingest.retention).
    prune_records_days: int | None = None


class _ConnLogEvents(FileSystemEventHandler):
    """Sets `changed` when a conn, notice or identity log is created, written, moved or closed."""

    def __init__(self, changed: threading.Event) -> None:
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            name = Path(str(path)).name
            if name and (is_conn_log_name(name) or is_side_log_name(name)):
                self.changed.set()
                return


def _targets(logdir: Path, live: bool, stop: threading.Event | None = None, within_tree: bool = False) -> list[Path]:
    """The conn, notice and identity logs of a pass; without `live`, the files Zeek is still writing are left out."""
    found = find_conn_logs([logdir], stop=stop.is_set if stop is not None else None, within_tree=within_tree).sources
    return found if live else [p for p in found if p.name not in _LIVE_NAMES]


def run_pass(store: Store, logdir: Path, options: WatchOptions, stop: threading.Event, log: Log) -> IngestSummary:
    """One exactly-once ingest pass over `logdir`; logs what it did."""
    summary = ingest_into(
        store, _targets(logdir, options.live, stop, options.within_tree), sensor=options.sensor,
        chunk_bytes=options.chunk_bytes, clock_skew=options.clock_skew, max_line_bytes=options.max_line_bytes,
        stop=stop.is_set,
    )  # fmt: skip
    for f in summary.files:
        if f.status == "ingested":
            log({"event": "ingested", "file": str(f.path), "rows": f.rows, "notices": f.notices,
                 "identities": f.identities, "quarantined": f.quarantined})  # fmt: skip
        elif f.status == "error":
            log({"event": "error", "file": str(f.path), "message": f.message})
    for repair in summary.repairs:
        log({"event": "repaired", "message": repair})
    if options.prune_records_days is not None and summary.days and not stop.is_set():
        cut = (dt.datetime.now(dt.UTC) - dt.timedelta(days=options.prune_records_days)).date().isoformat()
        pruned = prune_records(store, cut, stop.is_set)
        if pruned.days:
            log({"event": "pruned", "days": pruned.days, "records": pruned.records, "files": pruned.files})
    if summary.rows or summary.quarantined:
        lag = (dt.datetime.now(dt.UTC) - summary.newest).total_seconds() if summary.newest else None
        log({"event": "pass", "rows": summary.rows, "quarantined": summary.quarantined,
             "seconds": round(summary.seconds, 3), "days": sorted(summary.days), "merges": summary.merges,
             "lag_seconds": round(lag, 1) if lag is not None else None})  # fmt: skip
    return summary


#: The longest a stop request waits while the watcher is idle.
STOP_LATENCY = 0.5


def _wait_for_change(changed: threading.Event, stop: threading.Event, timeout: float) -> None:
    """Wait until a conn log changed, `stop` is set or `timeout` passed.

    Waits in slices of STOP_LATENCY: a signal handler can only set `stop`,
    which no wait on `changed` would notice.
    """
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or changed.wait(timeout=min(STOP_LATENCY, remaining)):
            return


def watch(
    logdir: Path,
    store_root: StoreFS | Path,
    options: WatchOptions,
    *,
    stop: threading.Event,
    log: Log,
    after_pass: AfterPass | None = None,
) -> None:
    """Backfill `logdir` into the store, then follow it until `stop` is set.

    `after_pass` is called after the backfill and after each later pass
    that added records. With `options.once`, return after the backfill.
    Raises SynackError when
    the store is locked (another watcher or ingest) or unusable.
    """
    with Store.open(store_root, grace=options.retire_grace) as store:
        log({"event": "start", "logdir": str(logdir), "store": str(store_root), "interval": options.interval})
        summary = run_pass(store, logdir, options, stop, log)
        if after_pass is not None:
            after_pass(summary)
        if options.once:
            return
        changed = threading.Event()
        observer = Observer()
        observer.schedule(_ConnLogEvents(changed), str(logdir), recursive=True)
        observer.start()
        try:
            rescan = options.interval * RESCAN_FACTOR
            while not stop.is_set():
                _wait_for_change(changed, stop, rescan)
                if stop.is_set():
                    break
                # Let a burst of writes settle, but stay inside the interval.
                settle = min(1.0, options.interval / 4)
                stop.wait(settle)
                changed.clear()
                started = time.monotonic()
                summary = run_pass(store, logdir, options, stop, log)
                store.mark()  # the marker holds the pass's last commit while the watcher waits
                if after_pass is not None and summary.days:
                    after_pass(summary)
                # At most one pass per interval keeps a busy sensor cheap; a
                # line written now is still committed within the interval.
                stop.wait(max(0.0, options.interval - settle - (time.monotonic() - started) - 1.0))
        finally:
            observer.stop()
            observer.join()
            log({"event": "stop"})
