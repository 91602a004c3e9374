"""Server ports: which host:port answered, when, for whom.

Interim implementation over the raw records; the per-day aggregates of
the inventory issue replace the scan with a merge of dailies.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest.schema import ANSWERED, OPEN
from inventory.store_reader import DateLike, read_records

SERVER_KEY = ["server_h", "proto", "server_p"]
SERVER_COLUMNS = SERVER_KEY + [
    "services",
    "first_seen",
    "last_seen",
    "connections",
    "clients",
    "sensors",
    "server_reply",
]


def _server_records(store: Path | str, since: DateLike, until: DateLike) -> pa.Table:
    cols = ["ts", "sensor", "proto", "service", "server_reply", "outcome", "server_h", "server_p", "client_h"]
    t = read_records(store, cols, since, until)
    served = pc.and_(
        pc.is_in(t.column("outcome").cast(pa.string()), pa.array([OPEN, ANSWERED])), pc.is_valid(t.column("server_h"))
    )
    t = t.filter(served)
    return t.cast(
        pa.schema([(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in t.schema])
    )


def _join_distinct(values: pa.Array) -> str:
    return ",".join(sorted(v for v in values.to_pylist() if v))


def servers(store: Path | str, since: DateLike = None, until: DateLike = None) -> pd.DataFrame:
    """Server ports seen in [since, until).

    Columns: server_h, proto, server_p, services (comma-joined Zeek
    services), first_seen, last_seen (UTC), connections, clients (distinct),
    sensors (comma-joined), server_reply (bytes of the earliest reply).
    One row per (server_h, proto, server_p), sorted by server address
    (numeric), proto, port.
    """
    t = _server_records(store, since, until).sort_by("ts")
    if len(t) == 0:
        return pd.DataFrame(columns=SERVER_COLUMNS)
    g = t.group_by(SERVER_KEY, use_threads=False).aggregate(
        [
            ("ts", "min"),
            ("ts", "max"),
            ("ts", "count"),
            ("client_h", "count_distinct"),
            ("sensor", "distinct"),
            ("service", "distinct"),
            ("server_reply", "first"),
        ]
    )
    df = pd.DataFrame(
        {
            "server_h": g.column("server_h").to_pylist(),
            "proto": g.column("proto").to_pylist(),
            "server_p": g.column("server_p").to_numpy(),
            "services": [_join_distinct(pa.array(v, pa.string())) for v in g.column("service_distinct").to_pylist()],
            "first_seen": g.column("ts_min").to_pandas(),
            "last_seen": g.column("ts_max").to_pandas(),
            "connections": g.column("ts_count").to_numpy(),
            "clients": g.column("client_h_count_distinct").to_numpy(),
            "sensors": [_join_distinct(pa.array(v, pa.string())) for v in g.column("sensor_distinct").to_pylist()],
            "server_reply": g.column("server_reply_first").to_pylist(),
        }
    )
    return sort_by_address(df, "server_h", ["proto", "server_p"])


def new_servers(store: Path | str, since: DateLike, until: DateLike = None) -> pd.DataFrame:
    """Server ports whose first sighting in the whole store is in [since, until).

    Columns: sensor, server_h, server_p, proto, first_seen ("when
    detected"), server_reply; sorted by first_seen.
    """
    everything = servers(store)
    from inventory.store_reader import as_timestamp

    start, end = as_timestamp(since), as_timestamp(until)
    mask = everything["first_seen"] >= pd.Timestamp(start) if start is not None else True
    if end is not None:
        mask = mask & (everything["first_seen"] < pd.Timestamp(end))
    new = everything[mask].copy()
    new["sensor"] = new["sensors"]
    cols = ["sensor", "server_h", "server_p", "proto", "first_seen", "server_reply"]
    return new[cols].sort_values("first_seen", kind="stable").reset_index(drop=True)


def sort_by_address(df: pd.DataFrame, column: str, then: list[str]) -> pd.DataFrame:
    """Sort `df` by the IP addresses in `column` numerically (IPv4 before IPv6), then by `then`."""
    import ipaddress

    keys = df[column].map(lambda a: (ipaddress.ip_address(a).version, int(ipaddress.ip_address(a))))
    order = sorted(range(len(df)), key=lambda i: (keys.iloc[i], *[df[c].iloc[i] for c in then]))
    return df.iloc[order].reset_index(drop=True)
