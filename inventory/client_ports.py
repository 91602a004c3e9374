"""Client ports: which host speaks which service (Tenable NNM's client view)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest import heap
from synack.ingest.addresses import ipv4_numbers
from synack.ingest.aggregates import NOT_V4, found_in
from synack.ingest.snapshot import TIMESTAMP
from synack.inventory.allowlist import Allowed, allowed_mask
from synack.inventory.dailies import CLIENTS, pair_tables_in_range, read_catalog, select, tables_in_range
from synack.inventory.networks import Network, in_networks, ipv4_text
from synack.inventory.query_rows import (
    EMPTY_DTYPES,
    Allow,
    Nets,
    Sensors,
    allow_entries,
    finish,
    firsts_of_keys,
    in_range_of,
    joined_per_key,
    new_rows,
    plain,
    resolve_nets,
    sensor_list,
    serving,
    sort_by_address,
    state_rows,
    state_tables,
    uint32,
    where,
)
from synack.inventory.server_ordered_pairs import ServerOrderedPairs, port_codes
from synack.inventory.store_reader import DateLike, StoreLike, day_range, snapshot_of

_TIMES = ["first_seen", "last_seen", "connections"]
PAIR_KEY = ["client_h", "server_h", "proto", "server_p"]
CLIENTS_COLUMNS = [
    "client_h", "proto", "server_p", "port_name", "services", "first_seen", "last_seen", "connections", "servers",
    "sensors",
]  # fmt: skip
PAIRS_COLUMNS = [
    "client_h", "server_h", "proto", "server_p", "port_name", "services", "first_seen", "last_seen", "connections",
    "sensors",
]  # fmt: skip
NEW_CLIENTS_COLUMNS = ["client_h", "proto", "server_p", "port_name", "services", "first_seen", "sensors", "servers"]


_AGGREGATES = [("first_seen", "min"), ("last_seen", "max"), ("connections", "sum")]


def _client_tables(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
                   columns: list[str], strict: bool, with_server: bool = True, servers: list[Network] | None = None,
                   first_seen: tuple[dt.datetime | None, dt.datetime | None] | None = None,
                   ) -> list[tuple[Iterator[pa.Table], str, str]]:  # fmt: skip
    """Two streams of the client dailies in the range, one file at a time,
    each with its client and server columns: the rows of IPv4 clients with
    the hosts' numbers (client_v4, server_v4), cheap to read and to hash,
    and the others with their text (client_h, server_h). `columns` are the
    other columns wanted; servers whose SYN-ACK the sensor missed count
    unless `strict`. Without `with_server` the server columns are not read
    (the years' client sightings then stand in for the days they cover).
    With `servers`, rows of other servers are mostly left unread (the files
    are in server order: a superset, tested exactly by the caller). With
    `first_seen` (lo, hi), only rows first seen in [lo, hi) (None: no
    bound), the years' sightings standing in for any of the range's days
    (dailies.select's `firsts`): a question of first uses."""
    store = snapshot_of(store)  # one state of the store for both reads
    start, end = day_range(since, until)
    names, net_list = sensor_list(sensors), resolve_nets(nets)
    v4 = pc.field("client_v4") < uint32(NOT_V4)
    first = _first_in(*first_seen) if first_seen is not None else None
    firsts = first_seen is not None
    if first is not None:
        v4 = v4 & first
    numbers = where(serving(strict), names, net_list, "client_h") & v4
    if servers is not None:
        numbers = numbers & in_range_of(servers, "server_v4")
    numeric_columns = ["client_v4", *(["server_v4"] if with_server else []), *columns]
    text_columns = ["client_h", *(["server_h"] if with_server else []), *columns]
    narrow = _few_hosts(net_list)
    numeric = tables_in_range(store, CLIENTS, start, end, where=numbers, columns=numeric_columns, narrow=narrow,
                              firsts=firsts)  # fmt: skip
    text_extra = ~(pc.field("client_v4") < uint32(NOT_V4))
    if servers is not None:
        text_extra = text_extra & in_range_of(servers, "server_v4")
    if first is not None:
        text_extra = text_extra & first
    text = state_tables(store, CLIENTS, start, end, serving(strict), names, net_list, host="client_h",
                        columns=text_columns, extra=text_extra, narrow=narrow, firsts=firsts)  # fmt: skip
    v4_clients, other_clients = _families(net_list)
    return [stream for stream, wanted in (((numeric, "client_v4", "server_v4"), v4_clients),
                                          ((text, "client_h", "server_h"), other_clients)) if wanted]  # fmt: skip


def _first_in(start: dt.datetime | None, end: dt.datetime | None) -> pc.Expression | None:
    """The test of rows first seen in [start, end) (None: every row)."""
    tests = [pc.field("first_seen") >= pa.scalar(start, TIMESTAMP)] if start is not None else []
    tests += [pc.field("first_seen") < pa.scalar(end, TIMESTAMP)] if end is not None else []
    return tests[0] & tests[1] if len(tests) == 2 else (tests[0] if tests else None)


def _families(nets: list[Network] | None) -> tuple[bool, bool]:
    """(whether `nets` hold IPv4 addresses, whether they hold others): a
    stream of clients of a family they do not hold would read every file of
    the range for no row (a host's client rows: twelve monthly roll-ups)."""
    if nets is None:
        return True, True
    return any(n.version == 4 for n in nets), any(n.version != 4 for n in nets)


def _distinct_servers(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
                      strict: bool) -> dict[str, pa.Table]:  # fmt: skip
    """Per client port (client_v4 or client_h, proto, server_p), how many
    distinct servers it used in the range (`servers`), by address family:
    from the client rows, and for each year's sightings the range covers
    from the year's server rows, whose client lists hold the year's pairs
    (a year's client sightings keep no servers): one file a year instead
    of twelve roll-ups of client pairs."""
    store = snapshot_of(store)
    start, end = day_range(since, until)
    names, net_list = sensor_list(sensors), resolve_nets(nets)
    v4_client = pc.field("client_v4") < uint32(NOT_V4)
    clients_where = where(serving(strict), names, net_list, "client_h")
    servers_where = where(serving(strict), names, None, "server_h")
    narrow = _few_hosts(net_list)
    numeric = _Merging(["client_v4", "proto", "server_p"], distinct="server_v4", packed=True)
    text = _Merging(["client_h", "proto", "server_p"], distinct="server_h")
    v4_clients, other_clients = _families(net_list)
    for kind, rows in pair_tables_in_range(
        store, start, end, client_where=clients_where & v4_client,
        client_columns=["client_v4", "server_v4", "proto", "server_p"],
        server_where=servers_where, server_columns=["server_v4", "proto", "server_p", "clients_v4"],
        narrow=narrow,
    ) if v4_clients else ():  # fmt: skip
        if kind == CLIENTS:
            numeric.add_pairs(rows)
        else:
            numeric.add_lists(rows, net_list)
    for kind, rows in pair_tables_in_range(
        store, start, end, client_where=clients_where & ~v4_client,
        client_columns=["client_h", "server_h", "proto", "server_p"],
        server_where=servers_where, server_columns=["server_h", "proto", "server_p", "clients_text"],
        narrow=narrow,
    ) if other_clients else ():  # fmt: skip
        if kind != CLIENTS:
            rows = _exploded(rows, "clients_text", "client_h", "server_h")
        if net_list is not None and len(rows):
            rows = rows.filter(pa.array(in_networks(plain(rows).column("client_h").combine_chunks(), net_list)))
        text.add_pairs(rows)
    return {"client_v4": numeric.counts(), "client_h": text.counts()}


#: Client networks of at most this many IPv4 addresses (a host, a small
#: subnet) are read narrowed: client rows are stored in server order, so
#: one client's rows lie in a few row groups that only a first read of the
#: client column finds (store_files.narrowed_read).
FEW_HOSTS = 1 << 16


def _few_hosts(nets: list[Network] | None) -> pc.Expression | None:
    """The client test of a narrowed read when `nets` name few IPv4 clients (FEW_HOSTS), else None."""
    if nets is None or sum(n.num_addresses for n in nets if n.version == 4) > FEW_HOSTS:
        return None
    return in_range_of(nets, "client_v4")


def _exploded(rows: pa.Table, clients: str, client: str, server: str) -> pa.Table:
    """Server rows with a list column of their `clients` as one row per
    (client, server, proto, server_p)."""
    values = rows.column(clients).combine_chunks()
    parents = pc.list_parent_indices(values)
    return pa.table({client: pc.list_flatten(values), server: pc.take(rows.column(server), parents),
                     "proto": pc.take(rows.column("proto"), parents),
                     "server_p": pc.take(rows.column("server_p"), parents)})  # fmt: skip


def _as_text(table: pa.Table) -> pa.Table:
    """Host numbers (client_v4, server_v4) replaced by their dotted quads (client_h, server_h)."""
    for number, text in (("client_v4", "client_h"), ("server_v4", "server_h")):
        if number in table.column_names:
            i = table.schema.get_field_index(number)
            table = table.set_column(i, text, ipv4_text(table.column(number)))
    return plain(table)


#: Merged rows a streaming merge holds before merging them again: its
#: memory follows the distinct keys of the answer, not the rows of the range.
STREAM_ROWS = 1 << 21
#: Rows a streaming merge gathers before it merges them.
MERGE_ROWS = 1 << 16
#: While set, a merge of more distinct keys stops with TooManyKeys: an
#: answer tried as one band before its bands are weighed (Inventory).
KEY_BUDGET: ContextVar[int | None] = ContextVar("KEY_BUDGET", default=None)


class TooManyKeys(Exception):
    """A merge met KEY_BUDGET: the question is answered in bands instead."""


def _within_budget(keys: int) -> None:
    budget = KEY_BUDGET.get()
    if budget is not None and keys > budget:
        raise TooManyKeys(f"more than {budget:,} keys")


@dataclass
class _Merging:
    """A group-by of many tables read one after another: per `key` the
    first and last seen and connections, the distinct services, the
    distinct sensors (of rows with a `sensor` column) and with
    `first_sensor` the sensor of the earliest row, and with `distinct` the
    number of distinct values of that column. Each table is merged as it
    comes; the (key, distinct) pairs are kept apart: a client's and its
    servers' numbers in server order (server_ordered_pairs: merged as
    sorted runs, on disk past a bound), text ones as key columns made
    distinct whenever they double. Memory follows the distinct keys and
    pairs, time stays linear in the rows read."""

    key: list[str]
    distinct: str | None = None
    first_sensor: bool = False
    packed: bool = False  # the key's hosts are numbers (client_v4, server_v4): merged as two integers
    protos: list[str | None] = field(default_factory=list)
    times: list[pa.Table] = field(default_factory=list)
    services: list[pa.Table] = field(default_factory=list)
    sensors: list[pa.Table] = field(default_factory=list)
    pairs: list[pa.Table] = field(default_factory=list)  # text (key, distinct) pairs
    ordered: ServerOrderedPairs | None = None  # packed (client port, server) pairs
    unsensored: bool = False  # rows without a sensor column were merged
    pending: list[pa.Table] = field(default_factory=list)  # rows added, not merged yet
    pending_rows: int = 0
    held: int = 0
    held_pairs: int = 0
    limit: int = 0  # rows held before they are merged again (0: STREAM_ROWS)

    def __post_init__(self) -> None:
        self.limit = self.limit or STREAM_ROWS

    @property
    def by(self) -> list[str]:
        """The columns rows are grouped by: the key, or its two packed integers."""
        return ["k_hosts", "k_port"] if self.packed else self.key

    def _pack(self, rows: pa.Table) -> pa.Table:
        """`rows` with the key replaced by two integers: the host numbers
        (the first in the high 32 bits) and the proto's number << 16 | port."""
        hosts = [rows.column(c).to_numpy().astype(np.uint64) for c in self.key if c.endswith("_v4")]
        packed_hosts = hosts[0] << np.uint64(32) | (hosts[1] if len(hosts) > 1 else np.uint64(0))
        port = port_codes(rows, self.protos).astype(np.int64)
        rest = [c for c in rows.column_names if c not in self.key]
        return (
            rows.select(rest).append_column("k_hosts", pa.array(packed_hosts)).append_column("k_port", pa.array(port))
        )

    def _unpack(self, table: pa.Table) -> pa.Table:
        """A result with the key columns back in place of the packed integers."""
        if not self.packed:
            return table
        hosts = table.column("k_hosts").to_numpy()
        port = table.column("k_port").to_numpy()
        values = {"proto": pc.take(pa.array(self.protos, pa.string()), pa.array(port >> 16)),
                  "server_p": pa.array((port & 0xFFFF).astype(np.uint16))}  # fmt: skip
        v4 = [c for c in self.key if c.endswith("_v4")]
        values[v4[0]] = pa.array((hosts >> np.uint64(32)).astype(np.uint32))
        if len(v4) > 1:
            values[v4[1]] = pa.array((hosts & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        rest = [c for c in table.column_names if c not in ("k_hosts", "k_port")]
        return pa.table({**{k: values[k] for k in self.key}, **{c: table.column(c) for c in rest}})

    def add(self, rows: pa.Table) -> None:
        """Merge `rows` in (their pairs at once, the rest with the rows held
        until MERGE_ROWS: a band's piece of each file is a few hundred rows,
        each merged alone cost a group-by's overhead)."""
        if not len(rows):
            return
        rows = plain(rows)
        if self.distinct is not None:
            self._add_pairs(rows)
        if self.pending and not rows.schema.equals(self.pending[0].schema):
            self._merge_pending()  # rows held together have one schema
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows >= MERGE_ROWS:
            self._merge_pending()

    def _merge_pending(self) -> None:
        if not self.pending:
            return
        rows = pa.concat_tables(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.pending_rows = [], 0
        rows = self._pack(rows) if self.packed else rows
        self.times.append(self._times(rows))
        self.services.append(_service_rows(rows, self.by))
        if "sensor" in rows.column_names:
            self.sensors.append(self._sensors(rows))
        else:
            self.unsensored = True
        self.held += sum(len(t[-1]) for t in (self.times, self.services, self.sensors) if t)
        if self.held > self.limit:
            self.times = [self._times(pa.concat_tables(self.times))]
            self.services = [pa.concat_tables(self.services).group_by([*self.by, "services"]).aggregate([])]
            self.sensors = [self._sensors(pa.concat_tables(self.sensors))] if self.sensors else []
            _within_budget(len(self.times[0]))
            self.held = sum(len(t[0]) for t in (self.times, self.services, self.sensors) if t)
            self.limit = max(self.limit, 2 * self.held)

    def add_pairs(self, rows: pa.Table) -> None:
        """Keep only the (key, distinct) pairs of `rows` (the key and the
        distinct column): for counts() alone."""
        if len(rows):
            self._add_pairs(plain(rows))

    def add_lists(self, rows: pa.Table, nets: list[Network] | None) -> None:
        """Packed only: keep the (client port, server) pairs of server rows
        (server_v4, proto, server_p, clients_v4) of the clients in `nets`
        (all when None), for counts() alone (ServerOrderedPairs.add_lists)."""
        assert self.packed and self.distinct == "server_v4"
        self._ordered().add_lists(plain(rows), nets)

    def _ordered(self) -> ServerOrderedPairs:
        if self.ordered is None:
            self.ordered = ServerOrderedPairs(self.protos)
        return self.ordered

    def _add_pairs(self, rows: pa.Table) -> None:
        """Keep the (key, distinct) pairs of `rows`: packed ones (a client
        and its servers' numbers) in server order (server_ordered_pairs),
        text ones as columns, made distinct whenever they double."""
        assert self.distinct is not None
        if self.packed:
            assert self.key[0] == "client_v4" and self.distinct == "server_v4"
            self._ordered().add_rows(rows.select(["client_v4", "server_v4", "proto", "server_p"]))
            return
        self.pairs.append(rows.select([*self.key, self.distinct]))
        self.held_pairs += len(self.pairs[-1])
        if self.held_pairs > self.limit:
            self.pairs = [self._pairs()]
            self.held_pairs = len(self.pairs[0])

    def counts(self) -> pa.Table:
        """Per key (its columns, as given), the number of distinct values of
        `distinct` kept (a column named `servers`); no rows when none was kept."""
        assert self.distinct is not None
        if not self.pairs and self.ordered is None:
            types = {"client_v4": pa.uint32(), "proto": pa.string(), "server_p": pa.uint16()}
            return pa.table({**{k: pa.array([], types.get(k, pa.string())) for k in self.key},
                             "servers": pa.array([], pa.int64())})  # fmt: skip
        counted = self._unpack(self._counts())
        return counted.rename_columns([*self.key, "servers"]).select([*self.key, "servers"])

    def _times(self, rows: pa.Table) -> pa.Table:
        return rows.group_by(self.by).aggregate(_AGGREGATES).rename_columns([*self.by, *_TIMES])

    def _sensors(self, rows: pa.Table) -> pa.Table:
        key = [*self.by, "sensor"]
        return rows.group_by(key).aggregate([("first_seen", "min")]).rename_columns([*key, "first_seen"])

    def _pairs(self) -> pa.Table:
        """The distinct (key, distinct) text pairs held."""
        assert self.distinct is not None and not self.packed
        return pa.concat_tables(self.pairs).group_by([*self.key, self.distinct]).aggregate([])

    def _counts(self) -> pa.Table:
        """Per key (the grouping columns), how many distinct values of `distinct` it has."""
        assert self.distinct is not None
        if not self.packed:
            counted = self._pairs().group_by(self.by).aggregate([(self.distinct, "count")])
            return counted.rename_columns([*self.by, f"{self.distinct}_count"])
        keys, counts = self.ordered.counts() if self.ordered is not None else (np.zeros(0, np.uint64), np.zeros(0))
        return pa.table({"k_hosts": pa.array(keys & np.uint64(0xFFFFFFFF00000000)),
                         "k_port": pa.array((keys & np.uint64(0xFFFFFFFF)).astype(np.int64)),
                         f"{self.distinct}_count": pa.array(counts.astype(np.int64))})  # fmt: skip

    def result(self) -> pa.Table | None:
        """One row per key: the key, first_seen, last_seen, connections,
        services (comma-joined), with `distinct` its count (named after the
        column), sensors (comma-joined; with rows of a sensor column) and
        with `first_sensor` first_sensor; None when nothing was added."""
        self._merge_pending()
        if not self.times:
            return None
        by = self.by
        times = self._times(pa.concat_tables(self.times))
        _within_budget(len(times))
        merged = _with_services(times, pa.concat_tables(self.services), by)
        if self.distinct is not None:
            merged = merged.join(self._counts(), by)
        if self.sensors:
            sensor_rows = pa.concat_tables(self.sensors)
            if self.first_sensor:
                merged = merged.join(_first_sensors(sensor_rows, by), by)
            names = pc.unique(sensor_rows.column("sensor"))
            if not self.unsensored and len(names) == 1 and names.null_count == 0:  # every key's rows had the one
                joined = pa.array(np.full(len(merged), names[0].as_py(), dtype=object), pa.string())
            else:
                joined = joined_per_key(merged.select(by), sensor_rows, "sensor")
            merged = merged.append_column("sensors", joined)
        return self._unpack(merged)


def _service_rows(rows: pa.Table, key: list[str]) -> pa.Table:
    """The distinct (key, service) pairs of `rows` (their `services` lists flattened)."""
    values = rows.column("services").combine_chunks()
    parents = pc.list_parent_indices(values)
    flat = pa.table({**{k: pc.take(rows.column(k), parents) for k in key}, "services": pc.list_flatten(values)})
    return flat.filter(pc.is_valid(flat.column("services"))).group_by([*key, "services"]).aggregate([])


def _merge_clients(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
                   first_sensor: bool = False, strict: bool = False,
                   only: NewPorts | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per (client_h, proto, server_p): first/last seen, connections,
    services, sensors, distinct servers (_distinct_servers), and with
    `first_sensor` the sensor of the earliest; merged a file at a time
    (_Merging), the years' client sightings standing in for their days.
    `only`: the rows of other client ports than the new ones of new_ports
    are left out before they are merged."""
    store = snapshot_of(store)  # one state of the store for every read below
    columns = ["proto", "server_p", *_TIMES, "services", "sensor"]
    start, end = day_range(since, until)
    # A range holding a year's sightings counts its servers apart (from the year's server rows); any other
    # reads each file once, with its servers.
    apart = any(r.is_sightings for r in select(read_catalog(store), start, end, CLIENTS, sightings=True).rollups)
    streams = []  # the rows merged first: a key budget (KEY_BUDGET) is met before the servers are counted
    for tables, client, server in _client_tables(store, since, until, sensors, nets, columns, strict,
                                                 with_server=not apart):  # fmt: skip
        key = [client, "proto", "server_p"]
        merging = _Merging(key, distinct=None if apart else server, first_sensor=first_sensor,
                           packed=client == "client_v4")  # fmt: skip
        for rows in tables:
            if only is not None:
                rows = rows.filter(pa.array(only[client].among(rows))) if client in only else rows.slice(0, 0)
            merging.add(rows)
        streams.append((merging.result(), key, client, server))
    heap.give_back()  # the merges' rows are gone: their pages go back before the servers' lists are read
    servers = _distinct_servers(store, since, until, sensors, nets, strict) if apart else {}
    parts = []
    for merged, key, client, server in streams:
        if merged is not None:
            if apart:
                counted = servers[client].cast(pa.schema([*(merged.schema.field(k) for k in key),
                                                          pa.field("servers", pa.int64())]))  # fmt: skip
                merged = merged.join(counted, key, join_type="left outer")
                merged = merged.set_column(merged.schema.get_field_index("servers"), "servers",
                                           pc.fill_null(merged.column("servers"), 0))  # fmt: skip
            else:
                merged = merged.rename_columns([c if c != f"{server}_count" else "servers"
                                                for c in merged.column_names])  # fmt: skip
            order = [*key, *_TIMES, "servers", "services", "sensors"]
            parts.append(_as_text(merged.select(order + (["first_sensor"] if first_sensor else []))))
    return _together(parts)


def _with_services(merged: pa.Table, rows: pa.Table, key: list[str]) -> pa.Table:
    """`merged` (one row per `key`) with the Zeek services of `rows` (a list
    column, or distinct (key, services) text rows), comma-joined ("" for none)."""
    return merged.append_column("services", joined_per_key(merged.select(key), rows, "services"))


def _together(parts: list[pa.Table]) -> pd.DataFrame:
    """The IPv4 and the other part of a result as one DataFrame (empty, with no columns, when both are)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame()
    return pa.concat_tables([parts[0], *(p.cast(parts[0].schema) for p in parts[1:])]).to_pandas()


def _first_sensors(rows: pa.Table, key: list[str]) -> pa.Table:
    """Per key, the sensor of its earliest row (key + first_sensor); on a
    tie of times the smallest sensor name, whatever the row order or the
    number of sensors: the rows sorted by time and name, the first per key."""
    ordered = rows.select([*key, "first_seen", "sensor"]).sort_by([("first_seen", "ascending"),
                                                                   ("sensor", "ascending")])  # fmt: skip
    first = ordered.group_by(key, use_threads=False).aggregate([("sensor", "first")])
    return first.rename_columns([*key, "first_sensor"])


def clients(
    store: StoreLike, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Client ports in [since, until): which client spoke to which service port.

    Columns: client_h, proto, server_p, port_name (IANA), services (Zeek's
    detected services of these connections, comma-joined), first_seen,
    last_seen, connections, servers (distinct), sensors (comma-joined). One row per (client_h, proto,
    server_p) for clients in `nets` (default: private ranges), however
    many connections; sorted by client address, proto, port.
    """
    df = _merge_clients(store, since, until, sensors, nets, strict=strict)
    return finish(df, CLIENTS_COLUMNS, ["client_h", "proto", "server_p"])


def client_pairs(
    store: StoreLike, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False, servers: list[Network] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The detail view: one row per (client_h, server_h, proto, server_p).

    Columns: client_h, server_h, proto, server_p, port_name, services,
    first_seen, last_seen, connections, sensors (comma-joined); sorted by
    client, server, proto, port. `servers`: only pairs of servers in these
    networks are wanted (most others are left unread; test them exactly).
    """
    parts = []
    columns = ["proto", "server_p", *_TIMES, "services", "sensor"]
    ordered = True  # IPv4 pairs alone, sorted by their numbers: already in address order
    for tables, client, server in _client_tables(store, since, until, sensors, nets, columns, strict,
                                                 servers=servers):  # fmt: skip
        key = [client, server, "proto", "server_p"]
        merging = _Merging(key, packed=client == "client_v4")
        for rows in tables:
            merging.add(rows)
        merged = merging.result()
        if merged is not None and len(merged):
            if client != "client_v4" or pc.max(merged.column("server_v4")).as_py() >= NOT_V4:
                ordered = False
            parts.append(_as_text(merged.sort_by([(k, "ascending") for k in key])))
    return finish(_together(parts), PAIRS_COLUMNS, ["client_h", "server_h", "proto", "server_p"], ordered)


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


def client_firsts(store: StoreLike, keys: pd.DataFrame, *, nets: Nets = None, sensors: Sensors = None,
                  strict: bool = False) -> pd.DataFrame:  # fmt: skip
    """The client ports of `keys` (client_h, proto, server_p) with their
    all-time first use (`first_seen`): the one column of client_sightings
    that new_clients and `clients` over a range need, read a file at a
    time (the years' client sightings and the days after them; IPv4
    clients by their numbers), cut to those keys and reduced to its minimum
    per key: memory follows the keys asked about, not the history's client
    ports. Keys never seen are left out; in no particular order."""
    given = keys[["client_h", "proto", "server_p"]].drop_duplicates()
    text = pa.array(given["client_h"].astype(object), pa.string())
    numbers, is_v4 = ipv4_numbers(text)
    proto, port = pa.array(given["proto"].astype(object), pa.string()), pa.array(given["server_p"], pa.uint16())
    wanted = {
        "client_v4": pa.table({"client_v4": pa.array(numbers.astype(np.uint32)), "proto": proto, "server_p": port})
        .filter(pa.array(is_v4)),
        "client_h": pa.table({"client_h": text, "proto": proto, "server_p": port}).filter(pa.array(~is_v4)),
    }  # fmt: skip
    parts = []
    for tables, client, _ in _client_tables(store, None, None, sensors, nets, ["proto", "server_p", "first_seen"],
                                            strict, with_server=False):  # fmt: skip
        if len(wanted[client]):
            parts.append(_as_text(firsts_of_keys(tables, wanted[client])))
    return _together(parts)


def new_clients(
    store: StoreLike, since: DateLike, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, allow: Allow = None, show_allowed: bool = False,
    sightings: pd.DataFrame | None = None, strict: bool = False, fresh: NewPorts | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Client ports whose first use in the whole store falls in [since, until):
    which client started speaking which service.

    Columns: sensor (the one that saw it first), client_h, server_p, proto,
    port_name, services, first_seen, servers (distinct, in the range); plus
    `allowed` with `show_allowed`. The allowlist matches the client
    address. Sorted by first_seen. The range's client ports are first told
    new (new_ports: not seen before the range in the whole history, read
    as the years' sightings and the days after them, never as client
    pairs), then only the rows of the new ones are merged: the work of the
    merge follows the answer, not the range (`fresh`: new_ports of the same
    range and settings, when known). With `sightings` (from
    client_sightings with the same nets and sensors) the range is merged
    whole and told new by them.
    """
    store = snapshot_of(store)
    start, end = day_range(since, until)
    if sightings is None:  # a new port's first use in the range is its first: only the new ones are merged
        new = fresh if fresh is not None else new_ports(store, start, end, sensors, nets, strict)
        found = pd.DataFrame()
        if any(kept.count() for kept in new.values()):
            found = _merge_clients(store, start, end, sensors, nets, first_sensor=True, strict=strict, only=new)
    else:
        found = _merge_clients(store, start, end, sensors, nets, first_sensor=True, strict=strict)
        if not found.empty:
            key = ["client_h", "proto", "server_p"]
            first = sightings[[*key, "first_seen"]].astype({"server_p": found["server_p"].dtype})
            found = found.drop(columns="first_seen").merge(first, on=key, how="left")
    return new_rows(found, start, end, allow_entries(allow), show_allowed, NEW_CLIENTS_COLUMNS, "client_h")


NewPorts = dict[str, "_PackedUses | _TextUses"]  # per stream of clients (client_v4, client_h): see new_ports


def first_uses(new: NewPorts, allow: Allow = None) -> np.ndarray:
    """The first uses (µs since the epoch, ascending) of the new client ports
    of `new`, allowlisted ones left out: how many new_clients would find
    when, without the rest of their rows (no servers, services or sensors
    merged: the daily report counts the new client ports of the days it
    compares this way)."""
    entries = allow_entries(allow)
    times = []
    for kept in new.values():
        found = kept.new()
        if entries:
            found = _not_allowed(found, entries)
        times.append(found.column("first_seen").cast(pa.int64()).to_numpy())
    return np.sort(np.concatenate(times)) if times else np.zeros(0, dtype=np.int64)


def new_within(new: NewPorts, start: dt.datetime | None, end: dt.datetime | None) -> NewPorts:
    """The new ports of `new` (new_ports of a range holding [start, end))
    first used in [start, end): new_ports of [start, end) itself, since a
    port never seen before the wider range was first used inside it."""
    return {client: kept.within(start, end) for client, kept in new.items()}


def _earliest(codes: np.ndarray, times: np.ndarray, hashed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(each distinct code of `codes`, ascending; its earliest time of
    `times`): by one sort, or `hashed` by Arrow's hash group-by and a sort
    of the distinct codes, much faster when codes repeat (2 M rows of 50,000
    ports: 21 ms against 283) and slower when they do not (2 M distinct: 466
    against 341)."""
    if hashed and len(codes):
        found = pa.table({"code": codes, "time": times}).group_by("code").aggregate([("time", "min")])
        codes, times = found.column("code").to_numpy(), found.column("time_min").to_numpy()
    order = np.argsort(codes)
    codes, times = codes[order], times[order]
    if not len(codes) or hashed:
        return codes, times
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return codes[starts], np.minimum.reduceat(times, starts)


def new_ports(store: StoreLike, start: dt.datetime | None, end: dt.datetime | None, sensors: Sensors, nets: Nets,
              strict: bool) -> NewPorts:  # fmt: skip
    """Per stream of clients (client_v4, client_h), the client ports first
    seen in [start, end) with their first use (the range's rows first seen
    in it, a year's sightings standing in for the range's days it holds),
    those with a row first seen before `start` in the whole history (the
    years' sightings, with the days after them) marked not new: IPv4
    client ports as one 64-bit number and a time each (_PackedUses), so a
    day of millions of them costs tens of bytes each."""
    columns = ["proto", "server_p", "first_seen"]
    uses: dict[str, _PackedUses | _TextUses] = {}
    for tables, client, _ in _client_tables(store, start, end, sensors, nets, columns, strict, with_server=False,
                                            first_seen=(start, end)):  # fmt: skip
        uses[client] = _PackedUses() if client == "client_v4" else _TextUses()
        for rows in tables:
            uses[client].add(rows)
    if start is not None:  # whole days up to start's: its day's rows are not re-aggregated to cut it
        for tables, client, _ in _client_tables(store, None, _midnight_after(start), sensors, nets, columns, strict,
                                                with_server=False, first_seen=(None, start)):  # fmt: skip
            for rows in tables:
                if client in uses:
                    uses[client].seen_before(rows)
    return uses


def _midnight_after(when: dt.datetime) -> dt.datetime:
    """The first midnight (UTC) at or after `when`."""
    midnight = dt.datetime.combine(when.astimezone(dt.UTC).date(), dt.time(), dt.UTC)
    return midnight if midnight == when else midnight + dt.timedelta(days=1)


@dataclass
class _PackedUses:
    """IPv4 client ports (client_v4, proto, server_p) as one number each
    (the client << 32 | the proto's index << 16 | the port) with their
    first use: made distinct by a sort whenever they double."""

    protos: list[str | None] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    times: list[np.ndarray] = field(default_factory=list)
    held: int = 0
    limit: int = 0  # rows held before they are reduced again (0: STREAM_ROWS)
    old: np.ndarray | None = None  # per distinct code (once reduced): seen before the range
    hashed: bool = False  # the last table's ports repeated: the next is made distinct by hashing (_earliest)

    def __post_init__(self) -> None:
        self.limit = self.limit or STREAM_ROWS

    def _pack(self, rows: pa.Table) -> np.ndarray:
        return (rows.column("client_v4").to_numpy().astype(np.uint64) << np.uint64(32)) | port_codes(rows, self.protos)

    def add(self, rows: pa.Table) -> None:
        """Keep the client ports of `rows` (of the range) with their first use."""
        if not len(rows):
            return
        rows = plain(rows)
        packed = self._pack(rows)
        codes, times = _earliest(packed, rows.column("first_seen").cast(pa.int64()).to_numpy(), self.hashed)
        self.hashed = len(codes) * 2 < len(packed)  # the next table alike: hashed while its ports repeat
        self.codes.append(codes)
        self.times.append(times)
        self.held += len(codes)
        if self.held > self.limit:
            self._reduce()
            self.limit = max(self.limit, 2 * self.held)

    def _reduce(self) -> None:
        """One row per code, its earliest time, codes ascending."""
        codes = np.concatenate(self.codes) if self.codes else np.zeros(0, dtype=np.uint64)
        times = np.concatenate(self.times) if self.times else np.zeros(0, dtype=np.int64)
        codes, times = _earliest(codes, times, self.hashed)
        self.codes, self.times = [codes], [times]
        self.held = len(codes)

    def _settled(self) -> np.ndarray:
        """Whether each distinct code (ascending, once reduced) was seen before the range."""
        if self.old is None:
            self._reduce()
            self.old = np.zeros(len(self.codes[0]), dtype=bool)
        return self.old

    def seen_before(self, rows: pa.Table) -> None:
        """Mark the client ports of `rows` (first seen before the range) as not new."""
        old = self._settled()
        if len(rows) and len(old):
            found, at = found_in(self.codes[0], self._pack(plain(rows)))
            old[at[found]] = True

    def _new_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(the codes of the client ports never seen before the range, ascending; their first uses)."""
        old = self._settled()
        return self.codes[0][~old], self.times[0][~old]

    def count(self) -> int:
        """How many client ports are new."""
        return len(self._new_codes()[0])

    def within(self, start: dt.datetime | None, end: dt.datetime | None) -> _PackedUses:
        """The new client ports first used in [start, end), all new."""
        codes, times = self._new_codes()
        keep = np.ones(len(codes), dtype=bool)
        for bound, side in ((start, np.greater_equal), (end, np.less)):
            if bound is not None:
                keep &= side(times, pa.scalar(bound, TIMESTAMP).cast(pa.int64()).as_py())
        return _PackedUses(protos=self.protos, codes=[codes[keep]], times=[times[keep]], held=int(keep.sum()),
                           old=np.zeros(int(keep.sum()), dtype=bool))  # fmt: skip

    def among(self, rows: pa.Table) -> np.ndarray:
        """Whether each row of `rows` (client_v4, proto, server_p) is of a new client port."""
        return found_in(self._new_codes()[0], self._pack(plain(rows)))[0]

    def new(self) -> pa.Table:
        """The client ports never seen before the range: client_v4, proto, server_p, first_seen."""
        codes, times = self._new_codes()
        proto = pa.array((codes >> np.uint64(16)) & np.uint64(0xFFFF))
        return pa.table({
            "client_v4": pa.array((codes >> np.uint64(32)).astype(np.uint32)),
            "proto": pc.take(pa.array(self.protos, pa.string()), proto),
            "server_p": pa.array((codes & np.uint64(0xFFFF)).astype(np.uint16)),
            "first_seen": pa.array(times, pa.int64()).cast(TIMESTAMP),
        })  # fmt: skip


@dataclass
class _TextUses:
    """_PackedUses of the other client ports (client_h text), as Arrow group-bys."""

    held: list[pa.Table] = field(default_factory=list)
    seen: list[pa.Table] = field(default_factory=list)
    fresh: pa.Table | None = None  # the new ones' keys, once asked for (among)

    def add(self, rows: pa.Table) -> None:
        if len(rows):
            self.held = [pa.concat_tables([*self.held, _firsts(plain(rows))])]
            self.held = [_firsts(self.held[0], "first_seen_min")]

    def seen_before(self, rows: pa.Table) -> None:
        if len(rows) and self.held:
            self.seen.append(plain(rows.select(_TEXT_KEY)).join(self.held[0].select(_TEXT_KEY), _TEXT_KEY,
                                                                 join_type="left semi"))  # fmt: skip

    def count(self) -> int:
        return len(self._fresh())

    def within(self, start: dt.datetime | None, end: dt.datetime | None) -> _TextUses:
        found = self.new()
        when = found.column("first_seen")
        keep = pc.is_valid(when)
        if start is not None:
            keep = pc.and_(keep, pc.greater_equal(when, pa.scalar(start, when.type)))
        if end is not None:
            keep = pc.and_(keep, pc.less(when, pa.scalar(end, when.type)))
        return _TextUses(held=[found.filter(keep).rename_columns([*_TEXT_KEY, "first_seen_min"])])

    def _fresh(self) -> pa.Table:
        if self.fresh is None:
            self.fresh = self.new().select(_TEXT_KEY)
        return self.fresh

    def among(self, rows: pa.Table) -> np.ndarray:
        """Whether each row of `rows` (client_h, proto, server_p) is of a new client port."""
        numbered = plain(rows.select(_TEXT_KEY)).append_column("_row", pa.array(np.arange(len(rows))))
        hits = numbered.join(self._fresh(), _TEXT_KEY, join_type="left semi").column("_row")
        mask = np.zeros(len(rows), dtype=bool)
        mask[hits.to_numpy()] = True
        return mask

    def new(self) -> pa.Table:
        if not self.held:
            return pa.table({"client_h": pa.array([], pa.string()), "proto": pa.array([], pa.string()),
                             "server_p": pa.array([], pa.uint16()), "first_seen": pa.array([], TIMESTAMP)})  # fmt: skip
        found = self.held[0].rename_columns([*_TEXT_KEY, "first_seen"])
        if self.seen:
            found = found.join(pa.concat_tables(self.seen), _TEXT_KEY, join_type="left anti")
        return found


_TEXT_KEY = ["client_h", "proto", "server_p"]


def _firsts(rows: pa.Table, column: str = "first_seen") -> pa.Table:
    """Per (client_h, proto, server_p) of `rows`, the earliest `column` (as first_seen_min)."""
    found = rows.group_by(_TEXT_KEY, use_threads=False).aggregate([(column, "min")])
    return found.rename_columns([*_TEXT_KEY, "first_seen_min"])


#: Rows of new client ports matched against the allowlist at once (as a DataFrame).
_ALLOW_ROWS = 100_000


def _not_allowed(rows: pa.Table, entries: list[Allowed]) -> pa.Table:
    """The client-port rows of `rows` no allowlist entry matches, _ALLOW_ROWS at a time."""
    kept = []
    for offset in range(0, len(rows), _ALLOW_ROWS):
        part = rows.slice(offset, _ALLOW_ROWS)
        allowed = allowed_mask(_as_text(part).to_pandas(), entries, "client_h")
        kept.append(part.filter(pa.array(~np.asarray(allowed, dtype=bool))))
    return pa.concat_tables(kept) if kept else rows


def first_clients(store: StoreLike, since: DateLike, until: DateLike, keys: pd.DataFrame, sensors: Sensors,
                  servers: list[Network] | None, count: int) -> pd.DataFrame:  # fmt: skip
    """Per server port of `keys` (server_h, proto, server_p), the first
    `count` clients (from anywhere) to connect in [since, until): a
    DataFrame of the key and `first_clients`, comma-joined, earliest first
    (ties by address text). `servers`: networks holding every server of
    `keys` (None: read every server). The client rows are read a file at a
    time, each key keeping only its `count` earliest clients, so memory
    follows the keys, not their clients (a server millions connect to)."""
    key = ["server_h", "proto", "server_p"]
    wanted = keys[key].astype({"server_p": "int64"}).drop_duplicates()
    kept = pd.DataFrame(columns=[*key, "client_h", "first_seen"])
    columns = ["proto", "server_p", "first_seen"]
    for tables, _, _ in _client_tables(store, since, until, sensors, "all", columns, False, servers=servers):
        for rows in tables:
            if not len(rows):
                continue
            found = _as_text(plain(rows)).to_pandas().astype({"server_p": "int64"}).merge(wanted, on=key)
            parts = [p for p in (kept, found[[*key, "client_h", "first_seen"]]) if len(p)]
            if not parts:
                continue
            both = pd.concat(parts, ignore_index=True).groupby([*key, "client_h"], as_index=False)["first_seen"].min()
            both = both.sort_values(["first_seen", "client_h"], kind="stable")
            kept = both.groupby(key, sort=False).head(count)
    if kept.empty:
        return wanted.assign(first_clients="").iloc[:0]
    ordered = pa.Table.from_pandas(kept.sort_values(["first_seen", "client_h"], kind="stable")[[*key, "client_h"]],
                                   preserve_index=False)  # fmt: skip
    lists = ordered.group_by(key, use_threads=False).aggregate([("client_h", "list")])  # in row order
    joined = pc.binary_join(lists.column("client_h_list").cast(pa.list_(pa.string())), ", ")
    return lists.drop_columns(["client_h_list"]).append_column("first_clients", joined).to_pandas()
