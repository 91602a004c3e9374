"""IANA registered service names by (port, proto), from the shipped table."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd


@functools.cache
def _table() -> dict[tuple[int, str], str]:
    import pyarrow.csv as pacsv

    path = resources.files("synack.inventory") / "data" / "port_names.tsv"
    with path.open("rb") as f:
        table = pacsv.read_csv(
            f,
            read_options=pacsv.ReadOptions(skip_rows=2),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types={"port": "int32", "proto": "string", "name": "string"}),
        )
    keys = zip(table.column("port").to_pylist(), table.column("proto").to_pylist())
    return dict(zip(keys, table.column("name").to_pylist()))


def port_name(port: int, proto: str) -> str:
    """The IANA name of port/proto, or "" when unregistered."""
    return _table().get((int(port), proto), "")


@functools.cache
def _by_proto() -> dict[str, np.ndarray]:
    """Per protocol, the name of every port 0-65535 ("" when unregistered), for lookups by index."""
    names: dict[str, np.ndarray] = {}
    for (port, proto), name in _table().items():
        if 0 <= port < 1 << 16:
            if proto not in names:
                names[proto] = np.full(1 << 16, "", dtype=object)
            names[proto][port] = name
    return names


def port_names(ports: pd.Series, protos: pd.Series) -> pd.Series:
    """Vector form of port_name over aligned columns: one array lookup per
    protocol, however many rows and distinct ports."""
    by_proto = _by_proto()
    protocols, proto_values = pd.factorize(protos.astype(str), use_na_sentinel=False)
    values = ports.to_numpy(dtype=np.int64)
    names = np.full(len(values), "", dtype=object)
    known = (values >= 0) & (values < 1 << 16)
    for code, proto in enumerate(proto_values.tolist()):
        table = by_proto.get(str(proto))
        if table is not None:
            rows = known & (protocols == code)
            names[rows] = table[values[rows]]
    return pd.Series(names, index=ports.index, dtype=object)
