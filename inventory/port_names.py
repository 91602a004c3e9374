"""IANA registered service names by (port, proto), from the shipped table."""

from __future__ import annotations

import functools
from importlib import resources

import pandas as pd


@functools.cache
def _table() -> dict[tuple[int, str], str]:
    text = (resources.files("inventory") / "data" / "port_names.tsv").read_text(encoding="utf-8")
    out: dict[tuple[int, str], str] = {}
    for line in text.splitlines():
        if line.startswith("#") or line.startswith("port\t"):
            continue
        port, proto, name = line.split("\t")
        out[(int(port), proto)] = name
    return out


def port_name(port: int, proto: str) -> str:
    """The IANA name of port/proto, or "" when unregistered."""
    return _table().get((int(port), proto), "")


def port_names(ports: pd.Series, protos: pd.Series) -> pd.Series:
    """Vector form of port_name over aligned columns."""
    table = _table()
    return pd.Series([table.get((int(p), t), "") for p, t in zip(ports, protos)], index=ports.index, dtype=object)
