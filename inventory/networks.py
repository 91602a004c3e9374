"""Monitored networks: which addresses are "ours" (NNM's monitored range)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from inventory.store_reader import InventoryError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 1918, RFC 6598 shared address space, and IPv6 unique local addresses.
DEFAULT_NETS: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


def parse_nets(spec: str | Iterable[str] | None) -> list[Network] | None:
    """A comma-separated string or list of CIDRs -> networks; None, "" or "all" -> None (no restriction).

    Raises InventoryError naming the first entry that is not a network.
    """
    if spec is None:
        return None
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    if not items or items == ["all"]:
        return None
    nets = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InventoryError(f"not a network (CIDR): {item!r}") from None
    return nets


def in_networks(addresses: pa.Array, nets: list[Network] | None) -> np.ndarray:
    """Boolean mask: which of `addresses` (strings) lie in any of `nets` (all when None)."""
    n = len(addresses)
    if nets is None:
        return np.ones(n, dtype=bool)
    encoded = addresses.dictionary_encode() if not pa.types.is_dictionary(addresses.type) else addresses
    flags = []
    for value in encoded.dictionary.to_pylist():
        try:
            ip = ipaddress.ip_address(value)
        except (ValueError, TypeError):
            flags.append(False)
            continue
        flags.append(any(ip.version == net.version and ip in net for net in nets))
    lookup = np.array(flags + [False], dtype=bool)
    idx = encoded.indices.fill_null(len(flags)).to_numpy(zero_copy_only=False)
    return lookup[idx]
