"""The query helpers server_ports and client_ports share: options, daily rows, result frames.

Resolving a query's options (networks, sensors, allowlist), reading one
state's daily aggregate rows for a range filtered exactly, and turning
merged rows into the documented result frame (typed even when empty,
addresses sorted as addresses).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.addresses import ipv4_numbers
from synack.ingest.aggregates import NOT_V4, SERVED, SERVING, dictionary_codes, sorted_distinct
from synack.ingest.arrays import one_array
from synack.inventory.allowlist import Allowed, allowed_mask, load_allowlist
from synack.inventory.dailies import rows_in_range, tables_in_range
from synack.inventory.networks import DEFAULT_NETS, Network, in_networks, parse_nets
from synack.inventory.port_names import port_names
from synack.inventory.store_reader import StoreLike

Nets = str | list[str] | None
Sensors = str | list[str] | None
Allow = str | Path | list[Allowed] | None


def resolve_nets(nets: Nets) -> list[Network] | None:
    """The monitored networks for a query: DEFAULT_NETS when `nets` is None."""
    return parse_nets(DEFAULT_NETS if nets is None else nets)


def sensor_list(sensors: Sensors) -> list[str] | None:
    """The sensors a query keeps: a comma-separated text or a list; None (or empty): all."""
    if sensors is None:
        return None
    items = [s.strip() for s in (sensors.split(",") if isinstance(sensors, str) else sensors) if s.strip()]
    return items or None


def allow_entries(allow: Allow) -> list[Allowed]:
    """The allowlist entries of `allow`: a file read (InventoryError when bad), a list as is, none for None."""
    if allow is None or isinstance(allow, list):
        return allow or []
    return load_allowlist(allow)


def where(state: str | tuple[str, ...], sensors: list[str] | None, nets: list[Network] | None,
          host: str) -> pc.Expression:  # fmt: skip
    """A filter the daily files can prune row groups with: the state (or states), the
    sensors, and the IPv4 ranges of `nets` on the numeric column of `host`
    (server_v4 or client_v4). Rows of other addresses carry NOT_V4 there
    and pass to the exact test after."""
    expr = pc.field("state") == state if isinstance(state, str) else pc.field("state").isin(list(state))
    if sensors is not None:
        expr = expr & pc.field("sensor").isin(sensors)
    if nets is not None:
        expr = expr & in_range_of(nets, "server_v4" if host == "server_h" else "client_v4")
    return expr


def in_range_of(nets: list[Network], column: str) -> pc.Expression:
    """A row-group-pruning superset test of `nets` on a host number column
    (server_v4 or client_v4): their IPv4 ranges, and every non-IPv4 host
    when a network is IPv6 (its exact test comes after); uint32 scalars, as
    the column (a cast in the expression costs a re-simplification per row
    group). No network: nothing passes."""
    test: pc.Expression | None = None
    number = pc.field(column)
    for low, high in number_spans(nets):
        part = number == uint32(low) if low == high == NOT_V4 else (number >= uint32(low)) & (number <= uint32(high))
        test = part if test is None else test | part
    return test if test is not None else pc.scalar(False)


def number_spans(nets: list[Network]) -> list[tuple[int, int]]:
    """The host numbers (server_v4 or client_v4) of `nets` as inclusive
    ranges, fewest first (merged_spans), and (NOT_V4, NOT_V4) last when a
    network is IPv6: every address that is not IPv4 carries NOT_V4."""
    spans = merged_spans([(int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == 4])
    return spans + ([(NOT_V4, NOT_V4)] if any(n.version != 4 for n in nets) else [])


def merged_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive (low, high) ranges as the fewest ranges covering the same
    numbers (overlapping and adjacent ones joined), in order: a band of
    "all" networks is one range, one test per row group, not sixteen."""
    joined: list[tuple[int, int]] = []
    for low, high in sorted(spans):
        if joined and low <= joined[-1][1] + 1:
            joined[-1] = (joined[-1][0], max(joined[-1][1], high))
        else:
            joined.append((low, high))
    return joined


def serving(strict: bool) -> tuple[str, ...]:
    """The states a server port is counted from: seen SYN-ACKs only when
    `strict`, inferred servers (SYN-ACK missed by the sensor) too otherwise."""
    return (SERVED,) if strict else SERVING


def uint32(value: int) -> pa.Scalar:
    """`value` as a uint32 scalar (the type of the numeric address columns)."""
    return pa.scalar(value, pa.uint32())


def state_rows(store: StoreLike, kind: str, start: dt.datetime | None, end: dt.datetime | None,
          state: str | tuple[str, ...],
          sensors: list[str] | None, nets: list[Network] | None, host: str = "server_h",
          columns: list[str] | None = None, extra: pc.Expression | None = None) -> pa.Table:  # fmt: skip
    """Daily rows of one state (or several) for the range (and `extra`), filtered exactly by sensor and network."""
    expr = where(state, sensors, nets, host)
    found = rows_in_range(store, kind, start, end, where=expr if extra is None else expr & extra, columns=columns)
    if nets is not None and len(found):
        found = found.filter(pa.array(in_networks(found.column(host).combine_chunks(), nets)))
    return found


def state_tables(store: StoreLike, kind: str, start: dt.datetime | None, end: dt.datetime | None,
                 state: str | tuple[str, ...], sensors: list[str] | None, nets: list[Network] | None,
                 host: str = "server_h", columns: list[str] | None = None,
                 extra: pc.Expression | None = None, narrow: pc.Expression | None = None,
                 firsts: bool = False) -> Iterator[pa.Table]:  # fmt: skip
    """state_rows one file at a time (dailies.tables_in_range, `narrow` and `firsts` too)."""
    expr = where(state, sensors, nets, host)
    for found in tables_in_range(store, kind, start, end, where=expr if extra is None else expr & extra,
                                 columns=columns, narrow=narrow, firsts=firsts):  # fmt: skip
        if nets is not None and len(found):
            found = found.filter(pa.array(in_networks(found.column(host).combine_chunks(), nets)))
        yield found


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded: for small, aggregated tables headed to pandas."""
    return table.cast(
        pa.schema([(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema])
    )


#: The dtypes of the result columns that are not text: an empty answer has the columns and dtypes of a full one.
EMPTY_DTYPES: dict[str, object] = {
    "server_p": "int64", "connections": "int64", "clients": "int64", "servers": "int64", "probes": "int64",
    "idle_days": "float64", "first_seen": "datetime64[us, UTC]", "last_seen": "datetime64[us, UTC]",
    "also_served": "bool", "allowed": "bool", "synack_seen": "bool", "answers_all": "bool",
    "port_name": object, "server_reply": object,
}  # fmt: skip


def distinct_joined(rows: pa.Table, key: list[str], column: str) -> pa.Table:
    """Per key, the sorted distinct values of `column` (a string or list column), comma-joined."""
    if pa.types.is_list(rows.schema.field(column).type):
        values = rows.column(column).combine_chunks()
        parents = pc.list_parent_indices(values)
        flat = pa.table({**{k: pc.take(rows.column(k), parents) for k in key}, column: pc.list_flatten(values)})
    else:
        flat = rows.select([*key, column])
    flat = flat.filter(pc.is_valid(flat.column(column))).group_by([*key, column]).aggregate([])
    flat = flat.sort_by([(column, "ascending")])
    joined = flat.group_by(key, use_threads=False).aggregate([(column, "list")])
    texts = pc.binary_join(joined.column(f"{column}_list").cast(pa.list_(pa.string())), ",")
    return joined.drop_columns([f"{column}_list"]).append_column(column, texts)


def firsts_of_keys(tables: Iterator[pa.Table], keys: pa.Table) -> pa.Table:
    """The rows of `keys` (distinct key columns) found in `tables` (one
    file's rows at a time, with those columns and first_seen), each with
    its minimum first_seen: each file's rows cut to the keys by a semi-join
    before they are kept, so memory follows the keys asked about, not the
    history's."""
    by = keys.column_names
    kept: list[pa.Table] = []
    for rows in tables:
        if len(rows):
            rows = plain(rows.select([*by, "first_seen"])).cast(
                pa.schema([*keys.schema, rows.schema.field("first_seen")])
            )
            kept.append(rows.join(keys, by, join_type="left semi"))
    if not kept:
        return keys.append_column("first_seen", pa.nulls(len(keys), pa.timestamp("us", tz="UTC"))).slice(0, 0)
    found = pa.concat_tables(kept).group_by(by, use_threads=False).aggregate([("first_seen", "min")])
    return found.rename_columns([*by, "first_seen"])


def joined_per_key(keys: pa.Table, rows: pa.Table, column: str) -> pa.Array:
    """Per row of `keys` (distinct rows of key columns), the sorted
    distinct non-null values of `column` (text, or lists of text) in the
    rows of `rows` with that key, comma-joined ("" for none): what
    distinct_joined gives, in the order of `keys` rather than joined back.
    Each row gets its key's number by one hash join (joined_by_group)."""
    by = keys.column_names
    numbered = keys.append_column("_key", pa.array(np.arange(len(keys), dtype=np.int64)))
    found = rows.select(by).append_column("_row", pa.array(np.arange(len(rows), dtype=np.int64)))
    found = found.join(numbered, by, join_type="inner")
    row = found.column("_row").to_numpy()
    return joined_by_group(rows.column(column).take(pa.array(row)), found.column("_key").to_numpy(), len(keys), "")


def joined_by_group(column: pa.ChunkedArray | pa.Array, group: np.ndarray, groups: int, fill: str | None) -> pa.Array:
    """Per group (`group` numbers each value of `column`, 0 <= group <
    `groups`), its distinct non-null values (text, or lists of text) in
    text order, comma-joined; `fill` for a group with none. Each (group,
    value) is one integer, made distinct by one sort: no group-by of text."""
    values = one_array(column)
    owner = group
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        owner = group[pc.list_parent_indices(values).to_numpy()]
        values = pc.list_flatten(values)
    values = values.cast(pa.string())
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    codes, uniques = dictionary_codes(values.filter(pa.array(valid)), np.arange(int(valid.sum())))
    rank = np.empty(len(uniques), dtype=np.int64)
    in_order = np.asarray(pc.sort_indices(uniques), dtype=np.int64)
    rank[in_order] = np.arange(len(uniques))
    width = max(len(uniques), 1)
    pairs = sorted_distinct(owner[valid] * width + rank[codes])
    counts = np.bincount(pairs // width, minlength=groups)
    lists = pa.ListArray.from_arrays(pa.array(np.r_[0, np.cumsum(counts)].astype(np.int32)),
                                     uniques.take(pa.array(in_order[pairs % width])).cast(pa.string()))  # fmt: skip
    joined = pc.binary_join(lists, ",")
    none = pa.array(counts == 0)
    return pc.if_else(none, pa.scalar(fill, pa.string()), joined)


def finish(df: pd.DataFrame, columns: list[str], sort: list[str], ordered: bool = False) -> pd.DataFrame:
    """`df` as a result: `columns` in order (with IANA port names), sorted
    by `sort` (unless the caller knows it is: `ordered`); typed columns when empty."""
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=EMPTY_DTYPES.get(c, "str")) for c in columns})
    if "port_name" in columns:
        df["port_name"] = port_names(df["server_p"], df["proto"])
    df["server_p"] = df["server_p"].astype("int64")
    return (df if ordered else sort_by_address(df, sort))[columns].reset_index(drop=True)


#: Columns holding IP addresses as text: sorted by number, not as text.
ADDRESS_COLUMNS = ("server_h", "client_h")


def address_key(address: str) -> str:
    """A text that sorts addresses numerically, IPv4 first."""
    ip = ipaddress.ip_address(address)
    return f"{ip.version}:{int(ip):032x}"


def sort_by_address(df: pd.DataFrame, sort: list[str]) -> pd.DataFrame:
    """`df` sorted by the columns `sort`, its address columns (server_h,
    client_h) numerically, IPv4 first (10.0.0.9 before 10.0.0.18); empty
    values last, ties in their order (a stable sort). Each column becomes
    integer ranks of its distinct values (IPv4 numbers parsed at once, only
    other addresses one by one), sorted by one lexsort."""
    if len(df) < 2 or not sort:
        return df
    ranks = [_address_ranks(df[c]) if c in ADDRESS_COLUMNS else _value_ranks(df[c]) for c in sort]
    return df.iloc[np.lexsort(ranks[::-1])]


def _value_ranks(values: pd.Series) -> np.ndarray:
    """Each value's rank among the distinct values of `values` (empty ones last)."""
    codes, uniques = pd.factorize(values, sort=True)
    return np.where(codes < 0, len(uniques), codes)


def _address_ranks(values: pd.Series) -> np.ndarray:
    """Each address's rank among the distinct addresses of `values`: IPv4 by number, then the others (address_key)."""
    if isinstance(values.dtype, pd.StringDtype | pd.ArrowDtype):  # Arrow text already: ranked without Python strings
        array = pa.array(values.array)
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        return address_ranks(array.cast(pa.string()))
    codes, uniques = pd.factorize(values)
    rank = address_ranks(pa.array([str(u) for u in uniques], pa.string()))
    return np.where(codes < 0, len(uniques), rank[codes])


def address_ranks(values: pa.Array) -> np.ndarray:
    """Each value's dense rank among the values of `values` (an Arrow text
    array): IPv4 addresses by number, then the others by address_key (one
    Python call per distinct other address), empty values last. Columnar:
    millions of IPv4 addresses never become Python strings."""
    numbers, is_v4 = ipv4_numbers(values)
    valid = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
    keys = numbers.astype(np.uint64)  # IPv4 below 2**32
    others = np.flatnonzero(valid & ~is_v4)
    if len(others):
        texts = pc.take(values, pa.array(others))
        distinct = pc.unique(texts)
        order = np.argsort(np.array([address_key(v) for v in distinct.to_pylist()], dtype=object), kind="stable")
        rank = np.empty(len(distinct), dtype=np.uint64)
        rank[order] = np.arange(len(distinct), dtype=np.uint64)
        keys[others] = (1 << 32) + rank[pc.index_in(texts, distinct).to_numpy()]
    keys[~valid] = np.uint64(1 << 62)  # after every address
    return np.unique(keys, return_inverse=True)[1].reshape(-1).astype(np.int64)


def new_rows(everything: pd.DataFrame, start: dt.datetime | None, end: dt.datetime | None, entries: list[Allowed],
              show_allowed: bool, columns: list[str], host: str) -> pd.DataFrame:  # fmt: skip
    """The rows of `everything` (sightings) first seen in [start, end), the allowlisted ones left out or marked."""
    if everything.empty:
        return finish(everything, columns + (["allowed"] if show_allowed else []), ["first_seen"])
    mask = pd.Series(True, index=everything.index)
    if start is not None:
        mask &= everything["first_seen"] >= pd.Timestamp(start)
    if end is not None:
        mask &= everything["first_seen"] < pd.Timestamp(end)
    new = everything[mask].copy()
    new["sensors"] = new["first_sensor"]  # the sensor that saw it first (the servers query's column, one name)
    new["allowed"] = allowed_mask(new, entries, host)
    if not show_allowed:
        new = new[~new["allowed"]]
    return finish(new, columns + (["allowed"] if show_allowed else []), ["first_seen", host, "server_p"])
