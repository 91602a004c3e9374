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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from synack.inventory.allowlist import Allowed
from synack.inventory.export import replacing

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
    out.write(HEADER)
    for rows in (known, expected):
        if len(rows):
            out.write(rows.to_csv(sep="\t", header=False, index=False, lineterminator="\n"))
    return len(known), len(expected)


def export_known(path: Path | str, servers: pd.DataFrame, allowed: list[Allowed]) -> KnownExport:
    """Replace `path` with the baseline (see the module); raises OSError when it cannot be written."""
    path = Path(path)
    with replacing(path) as out:
        known, expected = write_known(out, servers, allowed)
    return KnownExport(path, known, expected)
