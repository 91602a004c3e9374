"""Client ports: which host speaks which service (Tenable NNM's client view)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from inventory.dailies import CLIENTS, SERVED
from inventory.server_ports import (
    Allow,
    Nets,
    Sensors,
    _allow_entries,
    _finish,
    _new_rows,
    _plain,
    _rows,
    _sensor_list,
    resolve_nets,
)  # fmt: skip
from inventory.store_reader import DateLike, day_range

CLIENT_KEY = ["client_h", "proto", "server_p"]
PAIR_KEY = ["client_h", "server_h", "proto", "server_p"]
CLIENTS_COLUMNS = ["client_h", "proto", "server_p", "port_name", "first_seen", "last_seen", "connections", "servers"]
PAIRS_COLUMNS = ["client_h", "server_h", "proto", "server_p", "port_name", "first_seen", "last_seen", "connections"]
NEW_CLIENTS_COLUMNS = ["sensor", "client_h", "server_p", "proto", "port_name", "first_seen", "servers"]


def _pairs(store: Path | str, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets) -> pa.Table:
    start, end = day_range(since, until)
    return _rows(store, CLIENTS, start, end, SERVED, _sensor_list(sensors), resolve_nets(nets), host="client_h")


def _merge_clients(pairs: pa.Table) -> pd.DataFrame:
    if len(pairs) == 0:
        return pd.DataFrame()
    pairs = pairs.set_column(pairs.schema.get_field_index("sensor"), "sensor", pairs.column("sensor").cast(pa.string()))
    pairs = pairs.sort_by([("first_seen", "ascending")])
    g = pairs.group_by(CLIENT_KEY, use_threads=False).aggregate(
        [("first_seen", "min"), ("last_seen", "max"), ("connections", "sum"), ("server_h", "count_distinct"),
         ("sensor", "first")]
    )  # fmt: skip
    g = g.rename_columns([*CLIENT_KEY, "first_seen", "last_seen", "connections", "servers", "first_sensor"])
    return _plain(g).to_pandas()


def clients(
    store: Path | str, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, allow: Allow = None,
) -> pd.DataFrame:  # fmt: skip
    """Client ports in [since, until): which client spoke to which service port.

    Columns: client_h, proto, server_p, port_name, first_seen, last_seen,
    connections, servers (distinct). One row per (client_h, proto,
    server_p) for clients in `nets` (default: private ranges), however
    many connections; sorted by client address, proto, port.
    """
    df = _merge_clients(_pairs(store, since, until, sensors, nets))
    return (
        _finish(df, CLIENTS_COLUMNS, ["client_h", "proto", "server_p"])
        if not df.empty
        else _finish(df, CLIENTS_COLUMNS, ["first_seen"])
    )


def client_pairs(
    store: Path | str, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, allow: Allow = None,
) -> pd.DataFrame:  # fmt: skip
    """The detail view: one row per (client_h, server_h, proto, server_p).

    Columns: client_h, server_h, proto, server_p, port_name, first_seen,
    last_seen, connections; sorted by client, server, proto, port.
    """
    pairs = _pairs(store, since, until, sensors, nets)
    if len(pairs) == 0:
        return _finish(pd.DataFrame(), PAIRS_COLUMNS, ["first_seen"])
    g = pairs.group_by(PAIR_KEY).aggregate([("first_seen", "min"), ("last_seen", "max"), ("connections", "sum")])
    df = _plain(g.rename_columns([*PAIR_KEY, "first_seen", "last_seen", "connections"])).to_pandas()
    df = df.sort_values(["server_h", "proto", "server_p"], kind="stable")
    return _finish(df, PAIRS_COLUMNS, ["client_h", "server_h", "proto", "server_p"])


def new_clients(
    store: Path | str, since: DateLike, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, allow: Allow = None, show_allowed: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Client ports whose first use in the whole store falls in [since, until):
    which client started speaking which service.

    Columns: sensor, client_h, server_p, proto, port_name, first_seen,
    servers; plus `allowed` with `show_allowed`. The allowlist matches the
    client address. Sorted by first_seen.
    """
    start, end = day_range(since, until)
    everything = _merge_clients(_pairs(store, None, None, sensors, nets))
    return _new_rows(everything, start, end, _allow_entries(allow), show_allowed, NEW_CLIENTS_COLUMNS, "client_h")
