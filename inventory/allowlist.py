"""Expected services: an allowlist that keeps known ports out of "new" reports.

One entry per line, whitespace-separated, `#` starts a comment:

    # host or CIDR    proto   port or range   (comment)
    10.1.0.10         tcp     80,443          # web front ends
    10.1.0.0/24       udp     53              # resolvers
    192.168.5.7       any     1-1024
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synack.inventory.networks import Network
from synack.inventory.store_reader import InventoryError


@dataclass(frozen=True)
class Allowed:
    """One allowlist entry: network, protocol ("any" matches all), port ranges."""

    net: Network
    proto: str
    ports: tuple[tuple[int, int], ...]
    comment: str = ""


def _ports(text: str, where: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        try:
            low, high = int(lo), int(hi if dash else lo)  # "80-" is a range without its end: an error
        except ValueError:
            raise InventoryError(f"{where}: not a port or range: {part!r}") from None
        if not (0 <= low <= high <= 65535):
            raise InventoryError(f"{where}: port out of range: {part!r}")
        out.append((low, high))
    return tuple(out)


def parse_allowlist(text: str, source: str = "allowlist") -> list[Allowed]:
    """Parse allowlist text; raises InventoryError naming the line of the first bad entry."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line, _, comment = raw.partition("#")
        fields = line.split()
        if not fields:
            continue
        where = f"{source} line {number}"
        if len(fields) != 3:
            raise InventoryError(f"{where}: expected 'host-or-CIDR proto port[-port][,...]', got {raw.strip()!r}")
        try:
            net = ipaddress.ip_network(fields[0], strict=False)
        except ValueError:
            raise InventoryError(f"{where}: not a host or network: {fields[0]!r}") from None
        proto = fields[1].lower()
        if proto not in ("tcp", "udp", "any"):
            raise InventoryError(f"{where}: protocol must be tcp, udp or any, not {fields[1]!r}")
        entries.append(Allowed(net, proto, _ports(fields[2], where), comment.strip()))
    return entries


def load_allowlist(path: Path | str | None) -> list[Allowed]:
    """Read an allowlist file (none when `path` is None)."""
    if path is None:
        return []
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InventoryError(f"cannot read allowlist {path}: {err.strerror}") from None
    return parse_allowlist(text, path.name)


def allowed_mask(df: pd.DataFrame, entries: list[Allowed], host: str = "server_h") -> np.ndarray:
    """Which rows of `df` (columns `host`, proto, server_p) an entry allows."""
    mask = np.zeros(len(df), dtype=bool)
    if not entries or df.empty:
        return mask
    for i, (h, proto, port) in enumerate(zip(df[host], df["proto"], df["server_p"])):
        ip = ipaddress.ip_address(h)
        for e in entries:
            if (
                e.proto in ("any", proto)
                and ip.version == e.net.version
                and ip in e.net
                and any(lo <= int(port) <= hi for lo, hi in e.ports)
            ):
                mask[i] = True
                break
    return mask
