"""Finding conn logs in what a user names: files, and Zeek log directories.

A Zeek log directory holds the live `current/conn.log` (or `spool/`), dated
archive folders `YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS.log.gz`, standalone
rotation names `conn.YYYY-MM-DD-HH-MM-SS.log` and supervisor
`log-queue/conn__<open>__<close>__.log`. notice.log (the same names) is a
source too: synack keeps the notices of the package's notice.zeek; so are
the software, ssh, ssl, x509, dhcp and dns logs (what a server is,
ingest.server_identity). Other logs (http, files, ...) are reported as skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from synack.ingest.errors import SynackError

_CONN_NAME = re.compile(r"^conn(?:\.[^/]*?|__[^/]*?)?\.(?:log|json)(?:\.gz)?$")
#: Suricata: eve.json, per-thread eve.N.json, dated eve-%Y-%m-%d-%H:%M.json,
#: logrotate's eve.json.1 and their .gz.
_EVE_NAME = re.compile(r"^eve(?:[.-][^/]*?)?\.json(?:\.\d+)?(?:\.gz)?$")
_NOTICE_NAME = re.compile(r"^notice(?:\.[^/]*?|__[^/]*?)?\.(?:log|json)(?:\.gz)?$")
#: The identity logs (ingest.server_identity), under the same names as conn logs.
_IDENTITY_NAME = re.compile(r"^(?:software|ssh|ssl|x509|dhcp|dns)(?:\.[^/]*?|__[^/]*?)?\.(?:log|json)(?:\.gz)?$")
_LOG_NAME = re.compile(r"\.(?:log|json)(?:\.gz)?$")


def is_conn_log_name(name: str) -> bool:
    """True for the names Zeek, zeekctl and zeek-archiver give conn logs,
    and the names of Suricata's EVE files."""
    return bool(_CONN_NAME.match(name) or _EVE_NAME.match(name))


def is_eve_log_name(name: str) -> bool:
    """True for the names of Suricata's EVE files."""
    return bool(_EVE_NAME.match(name))


def is_notice_log_name(name: str) -> bool:
    """True for the names Zeek, zeekctl and zeek-archiver give notice logs."""
    return bool(_NOTICE_NAME.match(name))


def is_identity_log_name(name: str) -> bool:
    """True for the names Zeek gives the software, ssh, ssl, x509, dhcp and dns logs (live and rotated)."""
    return bool(_IDENTITY_NAME.match(name))


def is_side_log_name(name: str) -> bool:
    """True for a log read beside the conn logs: notice and identity logs."""
    return is_notice_log_name(name) or is_identity_log_name(name)


@dataclass(frozen=True)
class FoundLogs:
    """Conn logs to read (in a stable order), notice and identity logs, and other logs passed over."""

    conn: list[Path]
    skipped: list[Path]
    notices: list[Path] = field(default_factory=list)
    outside: list[Path] = field(default_factory=list)  # links not followed: they lead outside the tree (within_tree)

    @property
    def sources(self) -> list[Path]:
        """Every log to read: the conn logs, then the notice and identity logs."""
        return self.conn + self.notices


def find_conn_logs(paths: list[Path], stop: Callable[[], bool] | None = None, *,
                   within_tree: bool = False) -> FoundLogs:  # fmt: skip
    """Expand `paths` into the conn logs to ingest.

    A file named explicitly is always taken (its content decides later);
    a directory is walked for conn logs, skipping hidden entries and
    following symbolic links (zeekctl's `current`), except, with
    `within_tree`, those that lead outside the directory given (listed in
    `outside`). `stop` is asked at each directory: when it returns
    True the walk ends with what it found (a SIGTERM during a walk of a
    huge tree ends it at once). Raises SynackError for a path that does
    not exist.
    """
    conn: list[Path] = []
    notices: list[Path] = []
    skipped: list[Path] = []
    outside: list[Path] = []
    for path in paths:
        if path.is_file():
            conn.append(path)
        elif path.is_dir():
            for f in sorted(_walk(path, stop=stop, within=path.resolve() if within_tree else None,
                                  outside=outside)):  # fmt: skip
                if is_conn_log_name(f.name):
                    conn.append(f)
                elif is_side_log_name(f.name):
                    notices.append(f)
                elif _LOG_NAME.search(f.name):
                    skipped.append(f)
        else:
            raise SynackError(f"no such file or directory: {path}")
    seen: set[Path] = set()
    unique = [p for p in conn if not (p.resolve() in seen or seen.add(p.resolve()))]  # type: ignore[func-returns-value]
    return FoundLogs(unique, skipped, [p for p in notices if p.resolve() not in seen], outside)


def _walk(root: Path, visited: set[tuple[int, int]] | None = None, stop: Callable[[], bool] | None = None,
          within: Path | None = None, outside: list[Path] | None = None) -> list[Path]:  # fmt: skip
    """The files under `root`, following symlinks (zeekctl's `current` is one)
    but visiting each real directory once, so a link loop (`a -> .`) ends at once;
    before each directory `stop` is asked (True: the walk ends there). With
    `within`, a link whose target is outside that directory is not followed
    (it is added to `outside`)."""
    visited = set() if visited is None else visited
    try:
        real = root.stat()
    except OSError:
        return []
    if (real.st_dev, real.st_ino) in visited:
        return []
    visited.add((real.st_dev, real.st_ino))
    out: list[Path] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if within is not None and p.is_symlink() and not p.resolve().is_relative_to(within):
            if outside is not None:
                outside.append(p)
            continue
        if p.is_dir():
            if stop is not None and stop():
                break  # asked to stop: what was found so far
            out.extend(_walk(p, visited, stop, within, outside))
        elif p.is_file():
            out.append(p)
    return out
