"""Monitored networks: which addresses are "ours" (NNM's monitored range)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.addresses import ipv4_numbers
from synack.inventory.store_reader import InventoryError

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


def ipv4_text(numbers: pa.Array | pa.ChunkedArray) -> pa.Array:
    """uint32 IPv4 addresses -> dotted-quad strings (null -> 0.0.0.0),
    vectorized: each distinct address formatted once (an answer's hosts
    repeat), then taken."""
    filled = pc.fill_null(numbers, 0)
    encoded = (filled.combine_chunks() if isinstance(filled, pa.ChunkedArray) else filled).dictionary_encode()
    n = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=np.uint64)
    octets = [pc.cast(pa.array((n >> np.uint64(shift)) & np.uint64(255)), pa.string()) for shift in (24, 16, 8, 0)]
    return pc.take(pc.binary_join_element_wise(*octets, "."), encoded.indices)


def in_networks(addresses: pa.Array, nets: list[Network] | None) -> np.ndarray:
    """Boolean mask: which of `addresses` (strings) lie in any of `nets` (all when None).

    Work is per distinct address: IPv4 by integer range tests, vectorized;
    IPv6 (usually few) with the ipaddress module.
    """
    n = len(addresses)
    if nets is None:
        return np.ones(n, dtype=bool)
    encoded = addresses.dictionary_encode() if not pa.types.is_dictionary(addresses.type) else addresses
    values = encoded.dictionary
    numbers, is_v4 = ipv4_numbers(values)
    flags = np.zeros(len(values), dtype=bool)
    for net in nets:
        if net.version == 4:
            low, high = int(net.network_address), int(net.broadcast_address)
            flags |= is_v4 & (numbers >= low) & (numbers <= high)
    v6_nets = [net for net in nets if net.version == 6]
    if v6_nets:
        others = np.flatnonzero(~is_v4)
        for i, value in zip(others, pc.take(values, pa.array(others)).to_pylist()):
            try:
                ip = ipaddress.ip_address(value)
            except (ValueError, TypeError):
                continue
            flags[i] = any(ip.version == 6 and ip in net for net in v6_nets)
    lookup = np.append(flags, False)
    idx = pc.fill_null(encoded.indices, len(flags)).to_numpy(zero_copy_only=False)
    return lookup[idx]


#: A network no server or client is ever in (the IPv4 broadcast address):
#: the answer to narrowing networks to none.
NOWHERE = ipaddress.ip_network("255.255.255.255/32")


def narrowed(nets: list[Network] | None, hosts: list[Network]) -> list[Network] | None:
    """The part of `nets` (None: every address) inside `hosts` (none: no
    narrowing), as networks: [NOWHERE] when they do not meet."""
    if not hosts:
        return nets
    if nets is None:
        return list(hosts)
    inside = [h for h in hosts for n in nets if h.version == n.version and h.subnet_of(n)]  # type: ignore[arg-type]
    inside += [n for n in nets for h in hosts if n.version == h.version and n.subnet_of(h) and n not in inside]  # type: ignore[arg-type]
    return inside or [NOWHERE]
