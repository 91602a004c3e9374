"""Answers too big to hold at once, a band of addresses at a time.

A day on which a few hosts answer every port (a tarpit, a SYN proxy) has
millions of server ports; a pandas answer costs about 250 bytes a row, so
a query holds one band of host addresses at a time: the range's aggregate
rows are split by the host's number (server_v4 or client_v4) into bands of
about ANSWER_ROWS rows (PAIR_ROWS client pairs), each band a list of networks, and the ordinary
query runs once per band with its networks narrowed to the band's. A host
lies in one band, so what is per host (answers every port, a client's
servers) is whole in it; bands come in address order (IPv4 by number, the
other addresses last), which is the order of the answers sorted by
address: those are written band after band, the others sorted by an
external merge (see inventory.answer_stream).
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest import heap
from synack.ingest.aggregates import NOT_V4, sorted_distinct
from synack.inventory.dailies import CLIENTS, read_catalog, select, sightings_answer, tables_in_range
from synack.inventory.networks import Network, narrowed
from synack.inventory.query_rows import where
from synack.inventory.row_bounds import weight_bound
from synack.inventory.store_reader import StoreLike

#: Aggregate rows of a range answered at once: more are answered a band at a time.
ANSWER_ROWS = 100_000
#: Aggregate rows, and client list entries, that weigh one answer row in a band of server rows with their lists.
ROW_SHARE, LIST_SHARE = 4, 40
#: A band of server rows weighed with their lists holds this many times
#: ANSWER_ROWS: one merge of them (server_ports.BAND_ROWS alike), whose
#: answer rows are far fewer than its weight.
LIST_BANDS = 2
#: Client pair rows of a range answered at once (several days' rows merge into one answer row).
#: At 400,000 the fan-in day's `clients --detail` (2 M clients of one port)
#: peaked at 464-496 MB, on the 500 MB floor; at 250,000 it takes 371 MB,
#: and the 40k year's takes 362 MB (435) in 10% more time.
PAIR_ROWS = 250_000
#: Every address that is not IPv4 (their rows carry NOT_V4): the last band's.
_NOT_IPV4 = [ipaddress.ip_network("::/0")]

Band = list[Network] | None  # the band's networks; None: the one band of a small range


def address_bands(store: StoreLike, kind: str, start: dt.datetime | None, end: dt.datetime | None,
                  states: tuple[str, ...], sensors: list[str] | None, nets: list[Network] | None,
                  host: str = "server_h", rows: int | None = None, by_port: bool = True,
                  lists: bool = False) -> list[Band]:  # fmt: skip
    """Bands of the hosts (`host`: server_h or client_h) of the range's
    `kind` rows of `states`, `sensors` and `nets`, each holding about `rows`
    (ANSWER_ROWS) answer rows, in address order; [None] when one band holds
    them all, known from the ledger's row counts without reading a file
    when it can, else from the files' footers (inventory.row_bounds) when
    their statistics rule out enough rows. An answer row is a host's port (`by_port`: a range's
    days repeat it) or each aggregate row (a client and server pair).
    With `lists` (server rows whose client lists the answer merges), what
    a band reads weighs too: ROW_SHARE aggregate rows or LIST_SHARE list
    entries count as one answer row."""
    number = "server_v4" if host == "server_h" else "client_v4"
    # Client pairs are counted in the files their question reads: the years' client sightings keep no server.
    pairs = kind == CLIENTS and not by_port
    rows = rows or (PAIR_ROWS if pairs else ANSWER_ROWS * (LIST_BANDS if lists else 1))
    columns = [number, *(["server_p"] if by_port else []), *(["server_v4"] if pairs else [])]
    bound = select(read_catalog(store), start, end, kind, sightings=sightings_answer(kind, [*columns, host])).rows(kind)
    if bound is not None and bound <= rows and not lists:
        return [None]
    if kind != CLIENTS:  # client rows are in server order: their footers cannot rule out a client's rows
        # Each host's ports are at most its rows; a row weighs one, and with `lists` its share of a merge too.
        share = (1 + 1 / ROW_SHARE, 1 / LIST_SHARE) if lists else (1.0, 0.0)
        weighed = weight_bound(store, kind, start, end, columns=[*columns, host], states=states, nets=nets,
                               number=number, row_weight=share[0], list_weight=share[1])  # fmt: skip
        if weighed is not None and weighed <= rows:
            return [None]
    # The hosts' numbers alone: a row of another address (NOT_V4) counts in the last band, whatever the networks.
    numbers, keys, weights = [], [], []
    rows_of = _Histogram()  # pairs: rows per host, held as counts (a year's rows would be 82 M numbers)
    extra = ["clients_v4", "clients_text"] if lists else []
    for found in tables_in_range(store, kind, start, end, where=where(states, sensors, nets, host),
                                 columns=[*columns, *extra]):  # fmt: skip
        v4 = found.column(number).to_numpy().astype(np.int64)
        if by_port:  # a file's distinct (host, port) by hashing: its rows repeat one (a client's servers, states)
            keys.append(pc.unique(pa.array((v4 << 16) | found.column("server_p").to_numpy().astype(np.int64)))
                        .to_numpy())  # fmt: skip
        else:
            rows_of.add(v4)
        if lists:
            entries = sum(pc.fill_null(pc.list_value_length(found.column(c)), 0).to_numpy() for c in extra)
            numbers.append(v4)
            weights.append(1 / ROW_SHARE + entries / LIST_SHARE)
    if by_port:  # each host's distinct ports
        v4 = sorted_distinct(np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)) >> 16
        values, counts = _runs(v4, np.ones(len(v4)))
    else:
        values, counts = rows_of.counts()
    del keys, rows_of
    heap.give_back()  # the range's host numbers are gone: their pages go back before the answer is read
    if not len(values):
        return [None]
    if lists:
        counts += np.bincount(np.searchsorted(values, np.concatenate(numbers)), weights=np.concatenate(weights),
                              minlength=len(values))  # fmt: skip
    total = float(counts.sum())
    if total <= rows:
        return [None]
    cuts = np.searchsorted(np.cumsum(counts), np.arange(rows, total, rows), side="left")
    bounds = sorted({int(values[c]) + 1 for c in cuts if c + 1 < len(values)})
    bands: list[Band] = [_ipv4_interval(lo, hi) for lo, hi in zip([0, *bounds], bounds)]
    bands.append(_ipv4_interval(bounds[-1], NOT_V4 + 1) + _NOT_IPV4 if bounds else None)
    return bands


class _Histogram:
    """How many times each number was added, held as (number, count) pairs
    once the numbers added exceed HISTOGRAM_ROWS: memory follows the
    distinct numbers (a range's clients), not the rows (its client pairs)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.held = 0
        self.values = np.zeros(0, dtype=np.int64)
        self.weights = np.zeros(0, dtype=np.float64)

    def add(self, numbers: np.ndarray) -> None:
        self.parts.append(numbers)
        self.held += len(numbers)
        if self.held > HISTOGRAM_ROWS:
            self._collapse()

    def _collapse(self) -> None:
        added = np.sort(np.concatenate(self.parts)) if self.parts else np.zeros(0, dtype=np.int64)
        values, weights = _runs(added, np.ones(len(added)))
        if len(self.values):  # the counts so far and the new ones: few (the distinct numbers)
            numbers = np.concatenate([self.values, values])
            order = np.argsort(numbers, kind="stable")
            values, weights = _runs(numbers[order], np.concatenate([self.weights, weights])[order])
        self.values, self.weights = values, weights
        self.parts, self.held = [], 0

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct numbers added, ascending; how many times each was added)."""
        self._collapse()
        return self.values, self.weights


def _runs(numbers: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each distinct number of `numbers`, ascending; the sum of its `weights`)."""
    if not len(numbers):
        return numbers, weights
    starts = np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]])
    return numbers[starts], np.add.reduceat(weights, starts)


#: Host numbers held one per row before they are counted (8 bytes each).
HISTOGRAM_ROWS = 1 << 22


def _ipv4_interval(lo: int, hi: int) -> list[Network]:
    """The IPv4 addresses lo <= a < hi as CIDR networks."""
    first, last = ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi - 1)
    return list(ipaddress.summarize_address_range(first, last))


def within(nets: list[Network] | None, band: Band) -> list[Network] | None:
    """The networks of `nets` (None: every address) inside `band` ([NOWHERE] when none: networks.narrowed)."""
    return nets if band is None else narrowed(nets, band)
