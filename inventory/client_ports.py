"""Client ports: which host speaks which service (Tenable NNM's client view)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.aggregates import NOT_V4
from synack.inventory.dailies import CLIENTS, rows_in_range
from synack.inventory.networks import ipv4_text
from synack.inventory.query_rows import (
    EMPTY_DTYPES,
    Allow,
    Nets,
    Sensors,
    allow_entries,
    distinct_joined,
    finish,
    new_rows,
    plain,
    resolve_nets,
    sensor_list,
    serving,
    sort_by_address,
    state_rows,
    uint32,
    where,
)
from synack.inventory.store_reader import DateLike, StoreLike, day_range, snapshot_of

_TIMES = ["first_seen", "last_seen", "connections"]
PAIR_KEY = ["client_h", "server_h", "proto", "server_p"]
CLIENTS_COLUMNS = [
    "client_h", "proto", "server_p", "port_name", "services", "first_seen", "last_seen", "connections", "servers",
]  # fmt: skip
PAIRS_COLUMNS = [
    "client_h", "server_h", "proto", "server_p", "port_name", "services", "first_seen", "last_seen", "connections",
]  # fmt: skip
NEW_CLIENTS_COLUMNS = ["sensor", "client_h", "server_p", "proto", "port_name", "services", "first_seen", "servers"]


_AGGREGATES = [("first_seen", "min"), ("last_seen", "max"), ("connections", "sum")]


def _client_rows(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
                 columns: list[str], strict: bool) -> tuple[pa.Table, pa.Table]:  # fmt: skip
    """(rows of IPv4 clients, rows of the others) of the client dailies in
    the range: the first with the hosts' numbers (client_v4, server_v4),
    cheap to read and to hash; the second with their text (client_h,
    server_h). `columns` are the other columns wanted; servers whose
    SYN-ACK the sensor missed count unless `strict`."""
    store = snapshot_of(store)  # one state of the store for both reads
    start, end = day_range(since, until)
    names, net_list = sensor_list(sensors), resolve_nets(nets)
    v4 = pc.field("client_v4") < uint32(NOT_V4)
    numeric = rows_in_range(store, CLIENTS, start, end, where=where(serving(strict), names, net_list, "client_h") & v4,
                            columns=["client_v4", "server_v4", *columns])  # fmt: skip
    text = state_rows(store, CLIENTS, start, end, serving(strict), names, net_list, host="client_h",
                 columns=["client_h", "server_h", *columns], extra=~v4)  # fmt: skip
    return numeric, text


def _as_text(table: pa.Table) -> pa.Table:
    """Host numbers (client_v4, server_v4) replaced by their dotted quads (client_h, server_h)."""
    for number, text in (("client_v4", "client_h"), ("server_v4", "server_h")):
        if number in table.column_names:
            i = table.schema.get_field_index(number)
            table = table.set_column(i, text, ipv4_text(table.column(number)))
    return plain(table)


def _merge_clients(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
                   first_sensor: bool = False, strict: bool = False) -> pd.DataFrame:  # fmt: skip
    """One row per (client_h, proto, server_p): first/last seen, connections,
    distinct servers, and with `first_sensor` the sensor of the earliest."""
    extra = ["sensor"] if first_sensor else []
    numeric, text = _client_rows(store, since, until, sensors, nets,
                                 ["proto", "server_p", *_TIMES, "services", *extra], strict)  # fmt: skip
    parts = []
    for rows, client, server in ((numeric, "client_v4", "server_v4"), (text, "client_h", "server_h")):
        key = [client, "proto", "server_p"]
        merged = rows.group_by(key).aggregate([*_AGGREGATES, (server, "count_distinct")])
        merged = merged.rename_columns([*key, *_TIMES, "servers"])
        merged = _with_services(merged, rows, key)
        if first_sensor:
            merged = merged.join(_first_sensors(rows, key), key)
        parts.append(_as_text(merged))
    return _together(parts)


def _with_services(merged: pa.Table, rows: pa.Table, key: list[str]) -> pa.Table:
    """`merged` (one row per `key`) with the Zeek services of its `rows`, comma-joined ("" for none)."""
    joined = merged.join(distinct_joined(rows, key, "services"), key, join_type="left outer")
    i = joined.schema.get_field_index("services")
    return joined.set_column(i, "services", pc.fill_null(joined.column("services"), ""))


def _together(parts: list[pa.Table]) -> pd.DataFrame:
    """The IPv4 and the other part of a result as one DataFrame (empty, with no columns, when both are)."""
    if not len(parts[0]) and not len(parts[1]):
        return pd.DataFrame()
    return pa.concat_tables([parts[0], parts[1].cast(parts[0].schema)]).to_pandas()


def _first_sensors(rows: pa.Table, key: list[str]) -> pa.Table:
    """Per key, the sensor of its earliest row (key + first_sensor).

    One hash aggregation, no sort: the minimum of first_seen (µs) * n +
    sensor code carries the earliest time and its sensor together.
    """
    encoded = rows.column("sensor").combine_chunks().dictionary_encode()
    # Codes in name order: on a tie of times the smallest sensor name wins, whatever the row order.
    order = pc.sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    names = encoded.dictionary.take(pa.array(order))
    n = max(len(names), 1)
    seen = pc.fill_null(rows.column("first_seen").cast(pa.int64()), 0).to_numpy()
    if len(seen) and int(seen.max()) >= (2**63 - 1) // n:
        raise ValueError("too many sensors to rank first sightings")  # beyond 5,000 sensors
    code = rank[pc.fill_null(encoded.indices, 0).to_numpy()] if len(order) else np.zeros(len(seen), dtype=np.int64)
    stamp = seen * n + code
    earliest = rows.select(key).append_column("stamp", pa.array(stamp)).group_by(key).aggregate([("stamp", "min")])
    first = pc.take(names, pa.array(earliest.column("stamp_min").to_numpy() % n))
    return earliest.drop_columns(["stamp_min"]).append_column("first_sensor", first)


def clients(
    store: StoreLike, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Client ports in [since, until): which client spoke to which service port.

    Columns: client_h, proto, server_p, port_name (IANA), services (Zeek's
    detected services of these connections, comma-joined), first_seen,
    last_seen, connections, servers (distinct). One row per (client_h, proto,
    server_p) for clients in `nets` (default: private ranges), however
    many connections; sorted by client address, proto, port.
    """
    df = _merge_clients(store, since, until, sensors, nets, strict=strict)
    return finish(df, CLIENTS_COLUMNS, ["client_h", "proto", "server_p"])


def client_pairs(
    store: StoreLike, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """The detail view: one row per (client_h, server_h, proto, server_p).

    Columns: client_h, server_h, proto, server_p, port_name, services,
    first_seen, last_seen, connections; sorted by client, server, proto, port.
    """
    numeric, text = _client_rows(store, since, until, sensors, nets, ["proto", "server_p", *_TIMES, "services"],
                                 strict)  # fmt: skip
    parts = []
    for rows, key in ((numeric, ["client_v4", "server_v4", "proto", "server_p"]), (text, PAIR_KEY)):
        merged = _with_services(rows.group_by(key).aggregate(_AGGREGATES).rename_columns([*key, *_TIMES]), rows, key)
        parts.append(_as_text(merged.sort_by([(k, "ascending") for k in key])))
    return finish(_together(parts), PAIRS_COLUMNS, ["client_h", "server_h", "proto", "server_p"])


#: The columns of client_sightings.
SIGHTINGS_COLUMNS = ["client_h", "proto", "server_p", "first_seen", "last_seen", "connections", "services",
                     "first_sensor"]  # fmt: skip


def client_sightings(store: StoreLike, *, nets: Nets = None, sensors: Sensors = None,
                     strict: bool = False) -> pd.DataFrame:  # fmt: skip
    """Every client port of the store merged over all time (SIGHTINGS_COLUMNS:
    first and last use, connections, services, the sensor that saw it first),
    read from the years' sightings (ingest.sightings) and the days they do
    not cover: what new_clients tells new keys by (pass it as `sightings`)."""
    store = snapshot_of(store)
    names, net_list = sensor_list(sensors), resolve_nets(nets)
    key = ["client_h", "proto", "server_p"]
    rows = state_rows(store, CLIENTS, None, None, serving(strict), names, net_list, host="client_h",
                      columns=[*key, "sensor", *_TIMES, "services"])  # fmt: skip
    if not len(rows):
        return pd.DataFrame({c: pd.Series(dtype=EMPTY_DTYPES.get(c, object)) for c in SIGHTINGS_COLUMNS})
    rows = plain(rows)
    merged = rows.group_by(key, use_threads=False).aggregate(_AGGREGATES).rename_columns([*key, *_TIMES])
    merged = _with_services(merged, rows, key).join(_first_sensors(rows, key), key)
    return sort_by_address(merged.to_pandas(), key)[SIGHTINGS_COLUMNS].reset_index(drop=True)


def new_clients(
    store: StoreLike, since: DateLike, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, allow: Allow = None, show_allowed: bool = False,
    sightings: pd.DataFrame | None = None, strict: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Client ports whose first use in the whole store falls in [since, until):
    which client started speaking which service.

    Columns: sensor (the one that saw it first), client_h, server_p, proto,
    port_name, services, first_seen, servers (distinct, in the range); plus
    `allowed` with `show_allowed`. The allowlist matches the client
    address. Sorted by first_seen. The range's client rows are merged and
    told new by their all-time first use (`sightings`, from
    client_sightings with the same nets and sensors, or read here): the
    history is read as sightings, never as client pairs.
    """
    store = snapshot_of(store)
    start, end = day_range(since, until)
    found = _merge_clients(store, start, end, sensors, nets, first_sensor=True, strict=strict)
    if not found.empty:
        first = sightings if sightings is not None else client_sightings(store, nets=nets, sensors=sensors,
                                                                          strict=strict)  # fmt: skip
        key = ["client_h", "proto", "server_p"]
        first = first[[*key, "first_seen"]].astype({"server_p": found["server_p"].dtype})
        found = found.drop(columns="first_seen").merge(first, on=key, how="left")
    return new_rows(found, start, end, allow_entries(allow), show_allowed, NEW_CLIENTS_COLUMNS, "client_h")
