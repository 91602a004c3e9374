"""The store's known server ports as a baseline for the sensor (`synack export-known`).

The file is a Zeek Input-framework table that the package's `notice.zeek`
reads (REREAD mode) to raise a notice on the first SYN-ACK of a port that
is in neither part of it:

    #fields  net             proto  lo    hi    first_seen         what
    #types   subnet          string count count time               string
             10.1.0.1/32     tcp    22    22    1763700000.000000  known
             10.1.0.0/24     tcp    3000  4000  -                  expected

One `known` row per server port the store has seen (a /32 or /128, the
port as lo = hi, when it was first seen) and one `expected` row per port
range of the allowlist (its network, tcp, udp or any). The writer's
header is Zeek's own (`#separator`, `#unset_field`, ...), so `zeek-cut`
reads it too. The file is replaced whole (a temporary file renamed over
it), so a Zeek re-reading it never sees half of it.

A baseline is never silently emptied: `check_baseline` refuses an export
whose selection (sensors, networks) matches nothing the store holds, and
one that drops more than MAX_DROP of the current file's known rows,
unless forced; temporary files that killed exports left beside the file
are removed by the next one.

With a filter file (`export_known(..., filter_path=)`), the known ports go
to it as a Bloom filter (inventory.known_filter: megabytes per million
ports where the table costs Zeek a gigabyte) and the table keeps only the
`expected` rows. The filter is replaced first, so a Zeek re-reading both
never holds a baseline without the known ports.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from synack.inventory import known_filter
from synack.inventory.allowlist import Allowed
from synack.inventory.export import replacing
from synack.inventory.store_reader import InventoryError

#: The share of the current baseline's known rows an export may drop without --force.
MAX_DROP = 0.5

FIELDS = ("net", "proto", "lo", "hi", "first_seen", "what")
TYPES = ("subnet", "string", "count", "count", "time", "string")
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tsynack_known\n"
    f"#fields\t{chr(9).join(FIELDS)}\n#types\t{chr(9).join(TYPES)}\n"
)


@dataclass(frozen=True)
class KnownExport:
    """What an export wrote."""

    path: Path
    known: int  # server ports
    expected: int  # allowlist port ranges
    filter: Path | None = None  # where the known ports went as a Bloom filter, if they did


def known_rows(servers: pd.DataFrame) -> pd.DataFrame:
    """The `known` rows (FIELDS, as text) of server ports (server_h, proto, server_p, first_seen)."""
    tcp_udp = servers[servers["proto"].astype(str).isin(["tcp", "udp"])]
    hosts = tcp_udp["server_h"].astype(str)
    width = np.where(hosts.str.contains(":", regex=False), "/128", "/32")
    port = tcp_udp["server_p"].astype("int64").astype(str)
    micros = pd.to_datetime(tcp_udp["first_seen"], utc=True).dt.as_unit("us").astype("int64")
    seconds = (micros // 1_000_000).astype(str) + "." + (micros % 1_000_000).astype(str).str.zfill(6)
    return pd.DataFrame({
        "net": hosts + width,
        "proto": tcp_udp["proto"].astype(str),
        "lo": port,
        "hi": port,
        "first_seen": seconds,
        "what": "known",
    })  # fmt: skip


def expected_rows(allowed: list[Allowed]) -> pd.DataFrame:
    """The `expected` rows (FIELDS, as text) of allowlist entries, one per port range."""
    rows = [(str(e.net), e.proto, str(lo), str(hi), "-", "expected") for e in allowed for lo, hi in e.ports]
    return pd.DataFrame(rows, columns=list(FIELDS))


def write_known(out: IO[str], servers: pd.DataFrame, allowed: list[Allowed]) -> tuple[int, int]:
    """Write the baseline of `servers` and `allowed` to `out`; return (known, expected) row counts."""
    known, expected = known_rows(servers), expected_rows(allowed)
    return write_rows(out, known, expected)


def write_rows(out: IO[str], known: pd.DataFrame, expected: pd.DataFrame) -> tuple[int, int]:
    """Write the header and the `known` and `expected` rows to `out`; return their counts."""
    out.write(HEADER)
    for rows in (known, expected):
        if len(rows):
            out.write(rows.to_csv(sep="\t", header=False, index=False, lineterminator="\n"))
    return len(known), len(expected)


def export_known(path: Path | str, servers: pd.DataFrame, allowed: list[Allowed], *, force: bool = False,
                 filter_path: Path | str | None = None) -> KnownExport:  # fmt: skip
    """Replace `path` (and `filter_path`, when given) with the baseline (see
    the module). Raises InventoryError, leaving both as they were, when the
    new baseline would drop more than MAX_DROP of the current one's known
    ports, in the table and the filter (unless `force`); OSError when it
    cannot be written."""
    path = Path(path)
    filter_file = None if filter_path is None else Path(filter_path)
    remove_leftovers(path)
    new = len(known_rows(servers))
    old = known_count(path)
    if filter_file is not None:
        remove_leftovers(filter_file)
        previous = known_filter.read_filter(filter_file)
        old += previous.entries if previous else 0
    if not force and old and new < old * (1 - MAX_DROP):
        raise InventoryError(
            f"refusing to replace {path}: the new baseline has {new:,} known server ports, the current one {old:,} "
            f"(more than {MAX_DROP:.0%} would go, and notice.zeek would raise a notice for each); check the "
            "sensors and networks, or pass --force"
        )
    if filter_file is None:
        with replacing(path) as out:
            known, expected = write_known(out, servers, allowed)
        return KnownExport(path, known, expected)
    with replacing(filter_file) as out:
        known = known_filter.write_filter(out, servers)
    with replacing(path) as out:
        _, expected = write_rows(out, pd.DataFrame(columns=list(FIELDS)), expected_rows(allowed))
    return KnownExport(path, known, expected, filter_file)


def known_count(path: Path) -> int:
    """How many `known` rows the baseline at `path` holds (0 when there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if line.rstrip("\n").endswith("\tknown"))
    except (FileNotFoundError, IsADirectoryError):
        return 0


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temporary files of earlier exports to `path` whose process is gone; return them."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_selection(asked: list[str] | None, known: list[str], what: str) -> None:
    """Raise InventoryError when none of the `asked` names (sensors) is among
    `known`, naming at most three close matches."""
    if not asked or any(name in known for name in asked):
        return
    close = sorted({m for name in asked for m in difflib.get_close_matches(name, known, n=3)})[:3]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f" ({len(known)} {what}s known)"
    raise InventoryError(f"the store holds no records from {what} {', '.join(repr(a) for a in asked)}{hint}")
