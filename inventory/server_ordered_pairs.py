"""Distinct servers per client port, counted in server order.

`clients` over a year counts, per client port (client, proto, port), its
distinct servers: the union of the (server port, client) entries of the
years' server sightings (each server row's client list) and of the days
after them (client rows, one entry each), 25 M entries on a network of
350,000 records a day. Every aggregate file is stored in server order and
each row's client list is sorted, so a file's entries, each packed as one
number (its server port's rank << 32 | client), come already sorted: the
union is a merge of sorted runs (numpy's stable sort is a timsort, which
merges runs in linear time) and a comparison of neighbours, not a sort of
every entry (pair_spill) or a hash of every pair.

The entries are held compactly (a client number each, a code and an end
per row), up to HELD_BYTES; the merge goes a band of server ports at a
time (BAND_ENTRIES), so its temporary arrays follow a band. Past
HELD_BYTES every entry goes to a PairSpill instead (partitions on disk):
memory stays bounded whatever the question, the time is then the sort's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.aggregates import sorted_distinct
from synack.inventory.networks import Network
from synack.inventory.pair_spill import PairSpill
from synack.inventory.query_rows import number_spans

#: Bytes of entries held in memory (4 an entry, 16 a row) before they all go to a PairSpill.
HELD_BYTES = 192 << 20
#: Entries merged at once (about 40 bytes each while merged).
BAND_ENTRIES = 1 << 20
#: A table of rows out of order more often than this is sorted whole rather than cut into sorted runs.
MAX_RUNS = 64
_LOW = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


@dataclass
class _Run:
    """Rows in code order (server << 32 | port code): each row's code, the end
    of its entries in `clients` (cumulative), and the clients, each row's sorted."""

    codes: np.ndarray  # uint64
    ends: np.ndarray  # int64
    clients: np.ndarray  # uint32

    def rows_within(self, lo: int, hi: int | None) -> tuple[int, int]:
        """The rows whose codes lie in [lo, hi) (hi None: no end), as a slice's bounds."""
        a = int(np.searchsorted(self.codes, np.uint64(lo), side="left"))
        b = len(self.codes) if hi is None else int(np.searchsorted(self.codes, np.uint64(hi), side="left"))
        return a, b

    def entries_before(self, row: int) -> int:
        return int(self.ends[row - 1]) if row else 0


class ServerOrderedPairs:
    """Distinct (client port, server) entries of IPv4 clients and servers,
    gathered from server rows with client lists (add_lists) and from client
    rows (add_rows), counted per client port (counts). Ports are coded as
    port_codes codes them (`protos`, shared with the caller)."""

    def __init__(self, protos: list[str | None]) -> None:
        self.protos = protos
        self.runs: list[_Run] = []
        self.held = 0
        self.spill: PairSpill | None = None

    def add_lists(self, rows: pa.Table, nets: list[Network] | None) -> None:
        """Server rows (server_v4, proto, server_p, clients_v4): their entries
        of the clients in `nets` (all when None). The lists are held as
        read, a chunk (row group) at a time, without a copy of the table's."""
        if not len(rows):
            return
        codes = self._codes(rows)
        spans = number_spans(nets) if nets is not None else None
        first = 0
        for lists in rows.column("clients_v4").chunks:
            lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64)
            clients = np.asarray(pc.list_flatten(lists).to_numpy(zero_copy_only=False), dtype=np.uint32)
            ends = np.cumsum(lengths)
            if spans is not None:
                kept = _in_spans(clients, spans)
                if not kept.all():
                    ends = np.r_[0, np.cumsum(kept)][ends]
                    clients = clients[kept]
            if len(lists):
                self._add(codes[first : first + len(lists)], ends, clients)
            first += len(lists)

    def add_rows(self, rows: pa.Table) -> None:
        """Client rows (client_v4, server_v4, proto, server_p): one entry
        each; consecutive rows of one server port are held as one row."""
        if not len(rows):
            return
        codes = self._codes(rows)
        clients = rows.column("client_v4").to_numpy().astype(np.uint32)
        last = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])  # each run of one code's last row
        self._add(codes[last], (last + 1).astype(np.int64), clients)

    def _codes(self, rows: pa.Table) -> np.ndarray:
        """Each row's server << 32 | port code."""
        ports = port_codes(rows.select(["proto", "server_p"]), self.protos)
        return (rows.column("server_v4").to_numpy().astype(np.uint64) << _32) | ports

    def _add(self, codes: np.ndarray, ends: np.ndarray, clients: np.ndarray) -> None:
        """Hold rows (cut into runs in code order), or spill them."""
        if self.spill is not None:
            self._spill(_Run(codes, ends, clients))
            return
        self.held += len(clients) * clients.itemsize + len(codes) * (codes.itemsize + ends.itemsize)
        breaks = np.flatnonzero(codes[1:] < codes[:-1]) + 1
        if len(breaks) >= MAX_RUNS:
            self.runs.append(_sorted_run(codes, ends, clients))
        else:
            for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), len(codes)]):
                before = int(ends[a - 1]) if a else 0
                self.runs.append(_Run(codes[a:b], ends[a:b] - before, clients[before : int(ends[b - 1])]))
        if self.held > HELD_BYTES:
            self.spill = PairSpill()
            runs, self.runs = self.runs, []
            for run in runs:
                self._spill(run)

    def _spill(self, run: _Run) -> None:
        """Write a run's entries to the spill as (client << 32 | port code,
        server) pairs, about BAND_ENTRIES at a time."""
        assert self.spill is not None
        start = 0
        while start < len(run.codes):
            first = run.entries_before(start)
            stop = max(start + 1, int(np.searchsorted(run.ends, first + BAND_ENTRIES, side="right")))
            codes = np.repeat(run.codes[start:stop], np.diff(run.ends[start:stop], prepend=first))
            clients = run.clients[first : int(run.ends[stop - 1])].astype(np.uint64)
            self.spill.write(pa.table({"code": (clients << _32) | (codes & _LOW),
                                       "value": (codes >> _32).astype(np.uint32)}))  # fmt: skip
            start = stop

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(each client port's code, client << 32 | port code, ascending; its
        distinct servers), of every entry added; the holder is emptied."""
        if self.spill is not None:
            parts = list(self.spill.counts())
            self.spill.close()
            self.spill = None
        else:
            parts = [self._band_counts(lo, hi) for lo, hi in self._bands()]
        self.runs, self.held = [], 0
        parts = [p for p in parts if len(p[0])]
        if not parts:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        codes = np.concatenate([c for c, _ in parts])
        counts = np.concatenate([n for _, n in parts])
        keys, where = np.unique(codes, return_inverse=True)  # a client port's servers may lie in several bands
        return keys, np.bincount(where, weights=counts, minlength=len(keys)).astype(np.int64)

    def _bands(self) -> list[tuple[int, int | None]]:
        """[lo, hi) code ranges that each hold about BAND_ENTRIES entries of
        all runs (a code's entries are never cut), in order."""
        if not self.runs:
            return []
        candidates = sorted_distinct(np.concatenate([
            run.codes[np.searchsorted(run.ends, np.arange(0, int(run.ends[-1]), BAND_ENTRIES // 8))]
            for run in self.runs if len(run.codes)
        ]))  # fmt: skip
        before = sum(np.r_[0, run.ends][np.searchsorted(run.codes, candidates, side="left")] for run in self.runs)
        bounds, last = [0], 0
        for code, entries in zip(candidates.tolist(), np.asarray(before).tolist()):
            if entries - last >= BAND_ENTRIES and code > bounds[-1]:
                bounds.append(code)
                last = entries
        return [(lo, hi) for lo, hi in zip(bounds, [*bounds[1:], None])]

    def _band_counts(self, lo: int, hi: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(client port codes, distinct servers) of the entries whose codes lie in [lo, hi)."""
        pieces = [(run, *run.rows_within(lo, hi)) for run in self.runs]
        pieces = [(run, a, b) for run, a, b in pieces if b > a]
        if not pieces:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        ranked = sorted_distinct(np.concatenate([run.codes[a:b] for run, a, b in pieces]))
        entries = np.concatenate([_entries(run, a, b, ranked) for run, a, b in pieces])
        entries.sort(kind="stable")  # each piece is sorted: a merge
        if len(entries) > 1:
            entries = entries[np.r_[True, entries[1:] != entries[:-1]]]
        ports = ranked[(entries >> _32).astype(np.int64)] & _LOW
        counted = pc.value_counts(pa.array(((entries & _LOW) << _32) | ports))
        return counted.field("values").to_numpy(), counted.field("counts").to_numpy().astype(np.int64)


def port_codes(rows: pa.Table, protos: list[str | None]) -> np.ndarray:
    """Each row's proto and server_p as one number, the proto's index in
    `protos` (which grows by the protos it lacks) << 16 | port."""
    names = pc.unique(rows.column("proto")).to_pylist()
    protos += [n for n in names if n not in protos]
    proto = pc.index_in(rows.column("proto"), pa.array(protos, pa.string()), skip_nulls=False)
    return (proto.to_numpy().astype(np.uint64) << np.uint64(16)) | rows.column("server_p").to_numpy().astype(np.uint64)


def _entries(run: _Run, a: int, b: int, ranked: np.ndarray) -> np.ndarray:
    """Rows [a, b) of `run`'s entries as rank of their code in `ranked` << 32 | client (sorted)."""
    first = run.entries_before(a)
    lengths = np.diff(run.ends[a:b], prepend=first)
    rank = np.searchsorted(ranked, run.codes[a:b]).astype(np.uint64)
    return (np.repeat(rank, lengths) << _32) | run.clients[first : int(run.ends[b - 1])].astype(np.uint64)


def _sorted_run(codes: np.ndarray, ends: np.ndarray, clients: np.ndarray) -> _Run:
    """Rows far out of code order as one run: sorted by code (their lists moved alike)."""
    order = np.argsort(codes, kind="stable")
    lengths = np.diff(ends, prepend=0)[order]
    starts = (ends - np.diff(ends, prepend=0))[order]
    new_ends = np.cumsum(lengths)
    gather = np.repeat(starts - (new_ends - lengths), lengths) + np.arange(int(new_ends[-1]) if len(new_ends) else 0)
    return _Run(codes[order], new_ends, clients[gather])


def _in_spans(numbers: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """Whether each number lies in one of the inclusive spans."""
    kept = np.zeros(len(numbers), dtype=bool)
    for low, high in spans:
        kept |= (numbers >= np.uint32(low)) & (numbers <= np.uint32(high))
    return kept
