"""IP address facts, computed once per distinct address (dictionary values)."""

from __future__ import annotations

import ipaddress

import pyarrow as pa

_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def canonical(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Return (canonical text of each address, mask of invalid ones).

    `values` holds distinct address strings (a dictionary's values, so this
    loop runs per distinct address, not per row). IPv6 becomes its compressed
    form; an invalid address keeps its text and is flagged.
    """
    out: list[str | None] = []
    invalid: list[bool] = []
    for v in values.to_pylist():
        if v is None:
            out.append(None)
            invalid.append(False)
            continue
        try:
            out.append(ipaddress.ip_address(v).compressed)
            invalid.append(False)
        except ValueError:
            out.append(v)
            invalid.append(True)
    return pa.array(out, pa.string()), pa.array(invalid, pa.bool_())


def not_unicast(values: pa.Array) -> pa.Array:
    """Mask of the addresses (distinct, canonical) that are multicast or broadcast."""
    flags = []
    for v in values.to_pylist():
        try:
            a = ipaddress.ip_address(v) if v is not None else None
        except ValueError:
            a = None
        flags.append(bool(a is not None and (a.is_multicast or a == _BROADCAST)))
    return pa.array(flags, pa.bool_())
