"""IP address facts over arrays of addresses (typically a dictionary's values).

Dotted-quad IPv4 in canonical form is recognized with one regex kernel;
only the other values (IPv6, or something odd) go through Python's
`ipaddress`, which canonicalizes IPv6 to its compressed form.
"""

from __future__ import annotations

import ipaddress
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_MULTICAST_V4 = r"^2(2[4-9]|3[0-9])\."
_MULTICAST_V6 = r"^ff[0-9a-f]{0,2}:"
_BROADCAST_V4 = "255.255.255.255"
#: An IPv6 zone id (fe80::1%eth0): an interface name or number, nothing else.
_ZONE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def canonical(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Return (canonical text of each address, mask of invalid ones).

    IPv6 becomes its compressed lower-case form; an invalid address keeps
    its text and is flagged. Nulls stay null and are not flagged.
    """
    values = values.cast(pa.string())
    ok_v4 = pc.fill_null(pc.match_substring_regex(values, _CANONICAL_IPV4), True)
    if pc.all(ok_v4).as_py():
        return values, pa.array(np.zeros(len(values), dtype=bool))
    idx = pc.indices_nonzero(pc.invert(ok_v4)).to_numpy()
    others = pc.take(values, pa.array(idx)).to_pylist()
    fixed: list[str | None] = []
    invalid = np.zeros(len(values), dtype=bool)
    for i, v in zip(idx, others):
        try:
            address = ipaddress.ip_address(v)
            zone = address.scope_id if isinstance(address, ipaddress.IPv6Address) else None
            if zone is not None and not _ZONE.fullmatch(zone):
                raise ValueError("not a zone id")  # a TAB or an escape would reach terminals and Zeek's tables
            fixed.append(address.compressed)
        except ValueError:
            fixed.append(v)
            invalid[i] = True
    positions = np.full(len(values), -1, dtype=np.int64)
    positions[idx] = np.arange(len(idx))
    replacement = pc.take(pa.array(fixed, pa.string()), pa.array(np.maximum(positions, 0)))
    out = pc.if_else(pa.array(positions >= 0), replacement, values)
    return out, pa.array(invalid)


def not_unicast(values: pa.Array) -> pa.Array:
    """Mask of the (canonical) addresses that are multicast or the broadcast address."""
    values = values.cast(pa.string())
    mask = pc.or_(
        pc.or_(pc.match_substring_regex(values, _MULTICAST_V4), pc.match_substring_regex(values, _MULTICAST_V6)),
        pc.equal(values, _BROADCAST_V4),
    )
    return pc.fill_null(mask, False)


_IPV4 = r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"


def ipv4_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 value of each dotted-quad IPv4 address, mask of those that are one), vectorized."""
    values = values.cast(pa.string())
    is_v4 = np.asarray(pc.fill_null(pc.match_substring_regex(values, _IPV4), False).to_numpy(zero_copy_only=False))
    numbers = np.zeros(len(values), dtype=np.uint64)
    if is_v4.any():
        parts = pc.split_pattern(pc.filter(values, pa.array(is_v4)), ".")
        value = np.zeros(int(is_v4.sum()), dtype=np.uint64)
        for i in range(4):
            octet = pc.list_element(parts, i).cast(pa.uint64()).to_numpy()
            value = (value << np.uint64(8)) | octet
        numbers[is_v4] = value
    return numbers, is_v4
