"""Server ports: which host:port answered, when, for whom; new, gone and closed ones.

Every function reads daily aggregates only (see dailies), merges them over
the range with Arrow's group-by, and returns a pandas DataFrame with a
documented column order and sort. Ranges are half-open [since, until);
dates may be `date`, `datetime`, ISO strings or ages like "7d".
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest import heap
from synack.ingest.aggregates import CLOSED, SERVED, SERVER_ROW_COLUMNS, dictionary_codes, found_in, sorted_distinct
from synack.ingest.arrays import one_array
from synack.inventory.address_bands import address_bands, within
from synack.inventory.dailies import SERVERS
from synack.inventory.query_rows import (
    Allow,
    Nets,
    Sensors,
    address_key,
    allow_entries,
    finish,
    firsts_of_keys,
    joined_by_group,
    new_rows,
    plain,
    resolve_nets,
    sensor_list,
    serving,
    sort_by_address,
    state_rows,
    state_tables,
)
from synack.inventory.store_reader import DateLike, StoreLike, as_timestamp, day_range, snapshot_of

KEY = ["server_h", "proto", "server_p"]
SERVERS_COLUMNS = [
    "server_h", "proto", "server_p", "port_name", "services", "first_seen", "last_seen",
    "connections", "clients", "sensors", "server_reply", "synack_seen", "answers_all",
]  # fmt: skip
NEW_SERVERS_COLUMNS = [
    "server_h", "proto", "server_p", "port_name", "services", "first_seen", "sensors", "server_reply", "synack_seen",
    "answers_all",
]  # fmt: skip
#: The columns of hosts_answering_all.
ANSWERING_ALL_COLUMNS = ["server_h", "ports", "quiet_ports", "lowest_port", "highest_port", "first_seen"]
#: A host serving at least this many TCP ports in a query's range, most of
#: them without a detected service or a reply, answers every port (a SYN
#: proxy, a tarpit, a honeypot): flagged, and collapsed in the report.
ANSWERS_ALL_PORTS = 200
GONE_COLUMNS = [
    "server_h", "proto", "server_p", "port_name", "services", "first_seen", "last_seen", "idle_days", "connections",
    "sensors", "synack_seen",
]  # fmt: skip
CLOSED_COLUMNS = [
    "server_h", "proto", "server_p", "port_name", "first_seen", "last_seen", "probes", "clients", "sensors",
    "also_served",
]  # fmt: skip


def merge_servers(rows: pa.Table, count_clients: bool = False) -> pd.DataFrame:
    """Merge daily server rows into one row per (server_h, proto, server_p),
    with `count_clients` the exact distinct clients of their client sets
    (clients_per_key; else 0).

    Columns: the key, first_seen, last_seen, connections, first_sensor (the
    sensor of the earliest row, ties to the smallest name), synack_seen,
    server_reply (the earliest reply, ties to the smallest bytes), clients,
    services (comma-joined, "" for none), sensors (comma-joined, null for
    none); in the order the keys are first seen. The key is packed into one
    integer and every aggregate is a segment reduction of one lexsort (as
    ingest.aggregates does), not a group-by of the key's text."""
    if len(rows) == 0:
        return pd.DataFrame(columns=[c for c in SERVERS_COLUMNS if c != "port_name"] + ["first_sensor"])
    n = len(rows)
    hosts, _ = dictionary_codes(rows.column("server_h"), np.arange(n))
    protos, _ = dictionary_codes(rows.column("proto"), np.arange(n))
    port = rows.column("server_p").to_numpy(zero_copy_only=False).astype(np.int64)
    key = (hosts << 24) | ((protos + 1) << 16) | port
    sensor = one_array(rows.column("sensor").cast(pa.string()))
    first_seen = _micros(rows.column("first_seen"), np.iinfo(np.int64).max)
    # The rows in the order a stable sort by (first_seen, sensor) gives them: each key's first row, and the keys' order.
    order = np.lexsort((_ranks(sensor), first_seen))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    by_key = np.lexsort((position, key))
    sorted_key = key[by_key]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    groups = len(starts)
    group = np.empty(n, dtype=np.int64)
    group[by_key] = np.repeat(np.arange(groups), np.diff(np.r_[starts, n]))
    first = by_key[starts]
    seen = (
        pc.fill_null(pc.equal(rows.column("state"), SERVED), True) if "state" in rows.column_names else None
    )  # fmt: skip
    served = np.ones(n, dtype=bool) if seen is None else np.asarray(seen.to_numpy(zero_copy_only=False), dtype=bool)
    last_seen = np.maximum.reduceat(_micros(rows.column("last_seen"), np.iinfo(np.int64).min)[by_key], starts)
    connections = np.add.reduceat(
        pc.fill_null(rows.column("connections"), 0).to_numpy(zero_copy_only=False).astype(np.int64)[by_key], starts
    )
    clients = clients_per_key(rows, group, groups) if count_clients else np.zeros(groups, dtype=np.int64)
    merged = pa.table({
        "server_h": rows.column("server_h").take(first),
        "proto": rows.column("proto").take(first),
        "server_p": rows.column("server_p").take(first),
        "first_seen": rows.column("first_seen").take(first),
        "last_seen": pa.array(last_seen).cast(rows.schema.field("last_seen").type),
        "connections": pa.array(connections),
        "first_sensor": _first_valid(sensor, position, group, groups),
        "synack_seen": pa.array(np.logical_or.reduceat(served[by_key], starts)),
        "server_reply": _first_reply(rows, group, groups),
        "clients": pa.array(clients),
        "services": joined_by_group(rows.column("services"), group, groups, fill=""),
        "sensors": joined_by_group(sensor, group, groups, fill=None),
    })  # fmt: skip
    df = plain(merged.take(np.argsort(position[first], kind="stable"))).to_pandas()
    df["server_reply"] = df["server_reply"].astype(object).where(df["server_reply"].notna(), None)
    return df


def _micros(column: pa.ChunkedArray, null: int) -> np.ndarray:
    """A timestamp column as int64 microseconds, `null` where it is null."""
    return pc.fill_null(column.cast(pa.int64()), null).to_numpy(zero_copy_only=False).astype(np.int64)


def _ranks(values: pa.Array) -> np.ndarray:
    """Each value's rank among the distinct values (text order), nulls last."""
    codes, uniques = dictionary_codes(values, np.arange(len(values)))
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[np.asarray(pc.sort_indices(uniques))] = np.arange(len(uniques))
    rank[-1] = len(uniques)  # -1 (null) indexes the last slot
    return rank[codes]


def _first_valid(values: pa.Array, position: np.ndarray, group: np.ndarray, groups: int) -> pa.Array:
    """Per group, its first non-null value in `position` order (null when none)."""
    valid = np.flatnonzero(np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool))
    return _taken(values, _heads(valid, (position[valid],), group, groups))


def _first_reply(rows: pa.Table, group: np.ndarray, groups: int) -> pa.Array:
    """Per group, the server_reply of its earliest reply (reply_ts, then the smallest bytes); null when none."""
    replies = one_array(rows.column("server_reply"))
    has = pc.and_(pc.is_valid(rows.column("reply_ts")), pc.is_valid(replies))
    rows_with = np.flatnonzero(np.asarray(has.to_numpy(zero_copy_only=False), dtype=bool))
    if not len(rows_with):
        return pa.nulls(groups, replies.type)
    times = _micros(rows.column("reply_ts"), 0)[rows_with]
    ranks = _ranks(replies.take(pa.array(rows_with)))
    return _taken(replies, _heads(rows_with, (ranks, times), group, groups))


def _heads(candidates: np.ndarray, order: tuple[np.ndarray, ...], group: np.ndarray, groups: int) -> np.ndarray:
    """Per group, the first of the rows `candidates` by `order` (lexsort keys
    of those rows, the last the primary); -1 for a group with none."""
    first = np.full(groups, -1, dtype=np.int64)
    if len(candidates):
        o = candidates[np.lexsort((*order, group[candidates]))]
        g = group[o]
        heads = np.r_[True, g[1:] != g[:-1]]
        first[g[heads]] = o[heads]
    return first


def _taken(values: pa.Array, rows: np.ndarray) -> pa.Array:
    """`values` at `rows`, null where a row is -1."""
    return pc.if_else(pa.array(rows >= 0), values.take(pa.array(np.maximum(rows, 0))), pa.nulls(len(rows), values.type))


#: Aggregate rows a query merges at once: a range holding more is merged a
#: band of server addresses at a time (rows of different servers never
#: merge), which bounds a query's memory on a day of 10^7 records and more.
BAND_ROWS = 200_000


def _served(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
            count_clients: bool = True, strict: bool = False, in_band: bool = False) -> pd.DataFrame:  # fmt: skip
    """Merged server rows (inferred servers too unless `strict`); distinct
    clients (which need the client pairs) only when `count_clients`. A
    range of more than BAND_ROWS rows is merged a band of addresses at a
    time, unless the caller bands (`in_band`: `nets` are one band's)."""
    parts = list(_served_bands(store, since, until, sensors, nets, count_clients, strict, in_band))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _served_bands(store: StoreLike, since: DateLike, until: DateLike, sensors: Sensors, nets: Nets,
                  count_clients: bool = True, strict: bool = False,
                  in_band: bool = False) -> Iterator[pd.DataFrame]:  # fmt: skip
    """_served a band of at most BAND_ROWS rows at a time, in address order
    (at least one, maybe empty): for a caller that keeps a part of each."""
    store = snapshot_of(store)  # one state of the store for every read below
    start, end = day_range(since, until)
    names, net_list = sensor_list(sensors), resolve_nets(nets)
    columns = None if count_clients else SERVER_ROW_COLUMNS
    states = serving(strict)
    bands = (
        [None]
        if in_band
        else address_bands(
            store, SERVERS, start, end, states, names, net_list, rows=BAND_ROWS, by_port=False, lists=count_clients
        )
    )
    for band in bands:
        rows = state_rows(store, SERVERS, start, end, states, names, within(net_list, band), columns=columns)
        merged = merge_servers(rows, count_clients)
        del rows
        if len(bands) > 1:
            heap.give_back()
        yield merged


#: Client-list entries counted at once: bounds the memory of an exact
#: distinct count whatever a range holds (a busy day: 10^7 entries).
COUNT_ENTRIES = 1 << 20


def client_counts(rows: pa.Table, limit: int | None = None) -> pa.Table:
    """Exact distinct clients per (server_h, proto, server_p) of daily server
    rows, from their per-day client sets: a table of KEY + clients.

    Each row's key gets a dense number; the rows are taken in key order, a
    slice of whole keys of at most `limit` (COUNT_ENTRIES) list entries at
    a time, so the hash of (key, client) pairs stays small. IPv4 clients
    are counted as numbers, the others (IPv6) as text; an address is of
    one family, so the counts add up.
    """
    row_keys = plain(rows.select(KEY))
    keys = row_keys.group_by(KEY, use_threads=False).aggregate([])
    numbered = keys.append_column("key_id", pa.array(np.arange(len(keys), dtype=np.int32)))
    row_ids = (
        row_keys.append_column("row", pa.array(np.arange(len(rows), dtype=np.int64)))
        .join(numbered, KEY).sort_by("row").column("key_id").to_numpy()
    )  # fmt: skip
    return keys.append_column("clients", pa.array(clients_per_key(rows, row_ids, len(keys), limit)))


def clients_per_key(rows: pa.Table, row_ids: np.ndarray, keys: int, limit: int | None = None) -> np.ndarray:
    """The exact distinct clients of each of `keys` keys, `row_ids` naming each row's (see client_counts)."""
    order = np.argsort(row_ids, kind="stable")
    clients = np.zeros(keys, dtype=np.int64)
    for column in ("clients_v4", "clients_text"):
        lists = rows.column(column).combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()[order]
        for part in key_slices(row_ids[order], lengths, limit or COUNT_ENTRIES):
            chosen = order[part]
            sub = pc.take(lists, pa.array(chosen))
            parents = pc.list_parent_indices(sub).to_numpy()
            values = pc.list_flatten(sub)
            valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            # A client as a 32-bit code (its IPv4 number, or its text's
            # dictionary index), a (key, client) pair as one 64-bit number.
            codes = values if column == "clients_v4" else values.dictionary_encode().indices
            owner = row_ids[chosen].astype(np.int64)
            pairs = (owner[parents] << 32) | pc.fill_null(codes, 0).to_numpy().astype(np.int64)
            longest = _longest_rows(owner, lengths[part]) if column == "clients_v4" else None
            clients += _distinct_pairs(pairs, valid, parents, longest, keys)
    return clients


def _longest_rows(owner: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each row (in key order, `owner` its key) is its key's longest (the first such)."""
    ranked = np.lexsort((-lengths, owner))
    first = np.r_[True, owner[ranked][1:] != owner[ranked][:-1]]
    longest = np.zeros(len(owner), dtype=bool)
    longest[ranked[first]] = True
    return longest


def _distinct_pairs(pairs: np.ndarray, valid: np.ndarray, parents: np.ndarray, longest: np.ndarray | None,
                    keys: int) -> np.ndarray:  # fmt: skip
    """Per key (the high 32 bits of `pairs`), how many distinct pairs its
    valid entries hold. With `longest` (each row's key's longest row, rows
    in key order): that row's list is sorted and distinct already (a merged
    aggregate's), so only the other rows' pairs are sorted and looked up in
    it: a year's sightings and a few days after them sort the days' lists,
    not the year's. Lists found unsorted are sorted whole."""
    if longest is not None:
        base = longest[parents] & valid
        kept = pairs[base]
        if len(kept) < 2 or bool(np.all(kept[1:] > kept[:-1])):
            others = sorted_distinct(pairs[~base & valid])
            added = others[~found_in(kept, others)[0]]
            return np.bincount(kept >> 32, minlength=keys) + np.bincount(added >> 32, minlength=keys)
    return np.bincount(sorted_distinct(pairs[valid]) >> 32, minlength=keys)


def key_slices(keys: np.ndarray, lengths: np.ndarray, limit: int) -> list[slice]:
    """Consecutive slices of `keys` (sorted) that never split a key, cut at the
    first key start past every `limit` entries (by `lengths`): each holds at
    most `limit` entries plus one key's."""
    total = np.cumsum(lengths)
    if not len(keys) or total[-1] <= limit:
        return [slice(0, len(keys))]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])  # where each key's rows begin
    before = np.r_[0, total][starts]  # entries before each key
    picked = np.searchsorted(before, np.arange(limit, total[-1], limit), side="left")
    bounds = [0, *sorted({int(starts[i]) for i in picked if 0 < i < len(starts)}), len(keys)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def answering_all(found: pd.DataFrame, threshold: int = ANSWERS_ALL_PORTS) -> pd.DataFrame:
    """The hosts of `found` (server rows: server_h, proto, server_p,
    services, server_reply, first_seen) that serve at least `threshold` TCP
    ports, more than half of them quiet (no detected service, no reply):
    ANSWERING_ALL_COLUMNS, one row per host, most ports first."""
    if found.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "server_h" else object) for c in ANSWERING_ALL_COLUMNS})
    tcp = found[found["proto"] == "tcp"]
    quiet = (tcp["services"].fillna("") == "") & tcp["server_reply"].isna()
    per_host = tcp.assign(quiet=quiet).groupby("server_h", sort=False).agg(
        ports=("server_p", "nunique"), quiet_ports=("quiet", "sum"), lowest_port=("server_p", "min"),
        highest_port=("server_p", "max"), first_seen=("first_seen", "min"),
    )  # fmt: skip
    flagged = per_host[(per_host["ports"] >= threshold) & (per_host["quiet_ports"] * 2 > per_host["ports"])]
    flagged = flagged.reset_index().astype({"quiet_ports": "int64", "lowest_port": "int64", "highest_port": "int64"})
    return flagged.sort_values(["ports", "server_h"], ascending=[False, True], kind="stable")[ANSWERING_ALL_COLUMNS]


def _with_answers_all(found: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """`found` with `answers_all`: its host answers every port (see answering_all) in these rows."""
    hosts = set(answering_all(found, threshold)["server_h"]) if not found.empty else set()
    return found.assign(answers_all=found["server_h"].isin(hosts) if not found.empty else pd.Series(dtype=bool))


def servers(
    store: StoreLike, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False, answers_all_ports: int = ANSWERS_ALL_PORTS,
    in_band: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Server ports seen in [since, until).

    Columns: server_h, proto, server_p, port_name (IANA), services (Zeek's
    detected services, comma-joined), first_seen, last_seen (UTC),
    connections, clients (distinct), sensors (comma-joined), server_reply
    (bytes of the earliest reply), synack_seen (False: the sensor never saw
    this port's SYN-ACK, its server is inferred from the data it sent; left
    out when `strict`), answers_all (the host serves `answers_all_ports`
    TCP ports or more in the range, most of them quiet: see
    answering_all). One row per (server_h, proto, server_p) whose server is
    in `nets` (default: private ranges; "all" for every address), sorted by
    address, proto, port. `in_band`: `nets` are one band of a banded
    answer (inventory.address_bands), merged at once.
    """
    found = _served(store, since, until, sensors, nets, strict=strict, in_band=in_band)
    return finish(_with_answers_all(found, answers_all_ports), SERVERS_COLUMNS, ["server_h", "proto", "server_p"])


def hosts_serving(
    store: StoreLike,
    since: DateLike = None,
    until: DateLike = None,
    *,
    nets: Nets = None,
    sensors: Sensors = None,
    strict: bool = False,
) -> list[str]:
    """The distinct hosts that served in [since, until), in address order
    (the hosts of servers()): their address column read alone, a file at a time."""
    start, end = day_range(since, until)
    hosts: set[str] = set()
    for rows in state_tables(snapshot_of(store), SERVERS, start, end, serving(strict), sensor_list(sensors),
                             resolve_nets(nets), columns=["server_h"]):  # fmt: skip
        hosts.update(pc.unique(plain(rows).column("server_h")).to_pylist())
    return sorted(hosts, key=address_key)


def server_sightings(store: StoreLike, *, nets: Nets = None, sensors: Sensors = None,
                     strict: bool = False, in_band: bool = False) -> pd.DataFrame:  # fmt: skip
    """Every server port of the store merged over all time, with its first
    sighting: what new_servers selects from. Pass it to new_servers as
    `sightings` to ask about several periods for the price of one read.
    Sorted by address, proto, port. `in_band` as for servers."""
    found = _served(store, None, None, sensors, nets, count_clients=False, strict=strict, in_band=in_band)
    return sort_by_address(found, KEY).reset_index(drop=True) if not found.empty else found


def server_firsts(store: StoreLike, keys: pd.DataFrame, *, nets: Nets = None, sensors: Sensors = None,
                  strict: bool = False) -> pd.DataFrame:  # fmt: skip
    """The server ports of `keys` (KEY columns) with their all-time first
    sighting (`first_seen`): the one column of server_sightings that
    `servers` over a range needs, read alone (the key and first_seen of the
    years' sightings and the aggregates after them) a file at a time, cut
    to those keys, reduced to its minimum per key. Keys never seen are left
    out; in no particular order."""
    wanted = pa.Table.from_pandas(keys[KEY].drop_duplicates(), preserve_index=False)
    wanted = wanted.cast(pa.schema([("server_h", pa.string()), ("proto", pa.string()), ("server_p", pa.uint16())]))
    tables = state_tables(snapshot_of(store), SERVERS, None, None, serving(strict), sensor_list(sensors),
                          resolve_nets(nets), columns=[*KEY, "first_seen"])  # fmt: skip
    return firsts_of_keys(tables, wanted).to_pandas()


def new_servers(
    store: StoreLike, since: DateLike, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, allow: Allow = None, show_allowed: bool = False,
    sightings: pd.DataFrame | None = None, strict: bool = False, answers_all_ports: int = ANSWERS_ALL_PORTS,
) -> pd.DataFrame:  # fmt: skip
    """Server ports whose first sighting in the whole store falls in [since, until).

    LANGuardian's "New Server Ports" report. Columns: sensor (the one that
    saw it first), server_h, server_p, proto, port_name, services,
    first_seen ("when detected"), server_reply, synack_seen, answers_all
    (the host has `answers_all_ports` new TCP ports or more in the range,
    most of them quiet: see answering_all); plus `allowed` when
    `show_allowed` (otherwise allowed ports are left out). Sorted by
    first_seen. `sightings` (from server_sightings, with the same nets and
    sensors) saves reading the store again.
    """
    start, end = day_range(since, until)
    if sightings is None:
        everything = server_sightings(store, nets=nets, sensors=sensors, strict=strict)
    else:
        everything = sightings
    columns = [c for c in NEW_SERVERS_COLUMNS if c != "answers_all"]
    found = new_rows(everything, start, end, allow_entries(allow), show_allowed, columns, "server_h")
    flagged = _with_answers_all(found, answers_all_ports).astype({"answers_all": bool})
    return flagged[NEW_SERVERS_COLUMNS + (["allowed"] if show_allowed else [])]


def gone_servers(
    store: StoreLike, until: DateLike = None, *, idle_days: float = 7,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Server ports seen before `until` but not in the `idle_days` before it.

    `until` defaults to the end of the newest record in the store (not the
    wall clock, so an old store still answers sensibly). Columns:
    server_h, proto, server_p, port_name, services (Zeek's, comma-joined, as
    `servers` has them), first_seen, last_seen, idle_days (since last seen,
    at `until`), connections, sensors (comma-joined); sorted by last_seen.
    """
    store = snapshot_of(store)
    bands = lambda: _served_bands(store, None, until, sensors, nets, count_clients=False, strict=strict)  # noqa: E731
    if until is not None:
        as_of = pd.Timestamp(as_timestamp(until))
    else:  # the newest sighting: one pass more
        as_of = max((df["last_seen"].max() for df in bands() if not df.empty), default=None)
    parts = []
    for everything in bands() if as_of is not None else ():
        if everything.empty:
            continue
        idle = (as_of - everything["last_seen"]).dt.total_seconds() / 86400
        gone = everything[idle >= idle_days].copy()
        gone["idle_days"] = idle[idle >= idle_days].round(2)
        parts.append(gone)
    found = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if found.empty:
        return finish(found, GONE_COLUMNS, ["last_seen"])
    return finish(found, GONE_COLUMNS, ["last_seen", "server_h", "server_p"])


def closed(
    store: StoreLike, since: DateLike = None, until: DateLike = None, *,
    nets: Nets = None, sensors: Sensors = None, strict: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Ports that answered a SYN with RST in [since, until): scan targets.

    Columns: server_h, proto, server_p, port_name, first_seen, last_seen,
    probes (connection attempts refused), clients (distinct probers),
    sensors (comma-joined), also_served (the port also served in the range: a SYN-ACK, or, unless
    `strict`, data after a SYN-ACK the sensor missed).
    Sorted by probes, most first.
    """
    store = snapshot_of(store)
    start, end = day_range(since, until)
    names, net_list = sensor_list(sensors), resolve_nets(nets)
    rows = state_rows(store, SERVERS, start, end, CLOSED, names, net_list)
    df = merge_servers(rows, count_clients=True)
    if df.empty:
        return finish(df, CLOSED_COLUMNS, ["probes"])
    served_rows = state_rows(store, SERVERS, start, end, serving(strict), names, net_list, columns=KEY)
    served = plain(served_rows).to_pandas().drop_duplicates()
    served["also_served"] = True
    df = df.merge(served, on=KEY, how="left").rename(columns={"connections": "probes"})
    df["also_served"] = df["also_served"].astype("boolean").fillna(False).astype(bool)
    df = finish(df, CLOSED_COLUMNS, ["server_h", "proto", "server_p"])
    return df.sort_values("probes", ascending=False, kind="stable").reset_index(drop=True)
