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


def port_names(ports: pd.Series, protos: pd.Series) -> pd.Series:
    """Vector form of port_name over aligned columns: one lookup per
    distinct (port, proto), however many rows."""
    table = _table()
    protocols, proto_values = pd.factorize(protos.astype(str), use_na_sentinel=False)
    n = max(len(proto_values), 1)
    codes, keys = pd.factorize(ports.to_numpy(dtype=np.int64) * n + protocols)
    names = [table.get((int(k) // n, str(proto_values[k % n])), "") for k in keys]
    return pd.Series(np.array(names, dtype=object)[codes] if names else [], index=ports.index, dtype=object)
