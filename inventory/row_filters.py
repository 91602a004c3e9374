"""The analyst's filters on any answer: hosts, ports, protocols, services, then sort and limit.

One frozen value (RowFilter) built once from loose user input (CLI
options or keyword arguments) and applied to a query's DataFrame by
`RowFilter.apply`, the same way for every query, so `synack servers --port
3389` and `Inventory.servers(port=3389)` answer alike. Filters narrow the
rows of an answer; they never change a row (a server's `clients` still
counts every client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from synack.inventory.networks import Network, in_networks
from synack.inventory.query_rows import sort_by_address
from synack.inventory.store_reader import InventoryError

#: One or several values: a string ("22", "10.0.0.0/8", "22,80"), a number, or a list of them.
Many = str | int | Iterable[str | int] | None


def _items(values: Many) -> list[str]:
    """`values` as a list of stripped strings (a string may hold several, comma-separated)."""
    if values is None:
        return []
    if isinstance(values, (str, int)):
        values = [values]
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in str(value).split(",") if part.strip())
    return out


def _host(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InventoryError(f"--host {text!r} is neither an IP address nor a network (CIDR)") from None


def _ports(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi or lo)
    except ValueError:
        raise InventoryError(f"--port {text!r} is neither a port number nor a range (1000-2000)") from None
    if not 0 <= low <= high <= 65535:
        raise InventoryError(f"--port {text!r} is not a port or a range of ports within 0-65535")
    return low, high


@dataclass(frozen=True)
class RowFilter:
    """Which rows of an answer to keep, and in what order: hosts (addresses
    or networks), ports (single or ranges), protocols and services (Zeek's
    detected service, or the IANA name of the port), all optional; then
    sorted by `sort` (columns, in order) and cut to `limit` rows."""

    hosts: tuple[Network, ...] = ()
    ports: tuple[tuple[int, int], ...] = ()
    protos: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()
    limit: int | None = None

    @classmethod
    def of(cls, *, host: Many = None, port: Many = None, proto: Many = None, service: Many = None,
           sort: Many = None, limit: int | None = None) -> RowFilter:  # fmt: skip
        """Parse loose input; InventoryError (one line) for a bad host, port or limit."""
        if limit is not None and limit < 0:
            raise InventoryError(f"--limit {limit} is negative")
        return cls(
            hosts=tuple(_host(h) for h in _items(host)),
            ports=tuple(_ports(p) for p in _items(port)),
            protos=tuple(p.lower() for p in _items(proto)),
            services=tuple(s.lower() for s in _items(service)),
            sort=tuple(_items(sort)),
            limit=limit,
        )

    def __bool__(self) -> bool:
        return bool(self.hosts or self.ports or self.protos or self.services or self.sort or self.limit is not None)

    def apply(self, df: pd.DataFrame, hosts: Iterable[str] = ("server_h",)) -> pd.DataFrame:
        """The rows of `df` that pass (a host filter matches any of the
        `hosts` columns present), sorted and cut; `df.attrs` kept. Raises
        InventoryError for a sort column the answer does not have."""
        if not self:
            return df
        attrs = dict(df.attrs)
        keep = np.ones(len(df), dtype=bool)
        if self.hosts:
            columns = [c for c in hosts if c in df]
            matched = np.zeros(len(df), dtype=bool)
            for column in columns:
                matched |= in_networks(pa.array(df[column].astype(str).tolist()), list(self.hosts))
            keep &= matched
        if self.ports and "server_p" in df:
            ports = df["server_p"].to_numpy()
            keep &= np.logical_or.reduce([(ports >= lo) & (ports <= hi) for lo, hi in self.ports])
        if self.protos and "proto" in df:
            keep &= df["proto"].str.lower().isin(self.protos).to_numpy()
        if self.services:
            keep &= self._service_mask(df)
        out = df[keep]
        if self.sort:
            missing = [c for c in self.sort if c not in out]
            if missing:
                raise InventoryError(f"--sort {','.join(missing)}: no such column (the columns: {', '.join(df)})")
            out = sort_by_address(out, list(self.sort))
        if self.limit is not None:
            out = out.head(self.limit)
        out = out.reset_index(drop=True)
        out.attrs.update(attrs)
        return out

    def _service_mask(self, df: pd.DataFrame) -> np.ndarray:
        """Rows whose Zeek services (comma-joined) or IANA port name include one of `services`."""
        found = np.zeros(len(df), dtype=bool)
        for column in ("services", "port_name"):
            if column not in df:
                continue
            names = df[column].fillna("").astype(str).str.lower().str.split(",")
            found |= names.map(lambda items: any(s in items for s in self.services)).to_numpy(dtype=bool)
        return found
