"""Distinct servers per client port counted in server order equal a count of the distinct entries.

Before: `synack clients` over a year of 350,000 records a day sent the
year's 25 M (client port, server) pairs to disk and sorted them there
(pair_spill): 10.4 s, of which the count was 5.9 s.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest

from synack.inventory import server_ordered_pairs
from synack.inventory.server_ordered_pairs import ServerOrderedPairs

PROTOS = ["tcp", "udp", "icmp"]


def _server_rows(rng: np.random.Generator, n: int, order: str) -> pa.Table:
    """Server rows with sorted client lists (some empty, some null), in
    server order, in a few sorted runs (states), or shuffled."""
    servers = rng.integers(0, 60, n).astype(np.uint32)
    protos = rng.choice(PROTOS, n)
    ports = rng.choice([22, 53, 443, 65535], n).astype(np.uint16)
    lists: list[list[int] | None] = [sorted(set(rng.integers(0, 50, rng.integers(0, 12)).tolist())) for _ in range(n)]
    lists = [None if i % 17 == 5 else entries for i, entries in enumerate(lists)]
    table = pa.table({"server_v4": servers, "proto": protos, "server_p": ports,
                      "clients_v4": pa.array(lists, pa.list_(pa.uint32()))})  # fmt: skip
    code = np.lexsort((ports, [PROTOS.index(p) for p in protos], servers))
    if order == "sorted":
        return table.take(code)
    if order == "runs":  # three sorted regions, like the states of a file
        region = rng.integers(0, 3, n)
        return pa.concat_tables([table.take(code[region[code] == r]) for r in range(3)])
    return table.take(rng.permutation(n))


def _client_rows(rng: np.random.Generator, n: int) -> pa.Table:
    """Client rows (one entry each), in server then client order."""
    table = pa.table({"client_v4": rng.integers(0, 50, n).astype(np.uint32),
                      "server_v4": rng.integers(0, 60, n).astype(np.uint32), "proto": rng.choice(PROTOS, n),
                      "server_p": rng.choice([22, 53, 443], n).astype(np.uint16)})  # fmt: skip
    return table.sort_by([("server_v4", "ascending"), ("proto", "ascending"), ("server_p", "ascending"),
                          ("client_v4", "ascending")])  # fmt: skip


def _counted(pairs: ServerOrderedPairs, protos: list[str | None]) -> dict[tuple[int, str, int], int]:
    codes, counts = pairs.counts()
    assert np.all(codes[1:] > codes[:-1])
    return {(int(c >> 32), str(protos[int(c >> 16) & 0xFFFF]), int(c & 0xFFFF)): int(n) for c, n in zip(codes, counts)}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("order", ["sorted", "runs", "shuffled"])
@pytest.mark.parametrize("held, band", [(1 << 30, 1 << 21), (1 << 30, 40), (3000, 40)])
def test_counts_equal_the_distinct_entries(seed: int, order: str, held: int, band: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Server rows (sorted, in runs, shuffled: one run a row), client rows
    repeating their entries, and a network narrowing the clients: each
    client port's distinct servers, whether merged in one band, in many
    bands (a client port's servers in several), or sent to disk."""
    monkeypatch.setattr(server_ordered_pairs, "HELD_BYTES", held)
    monkeypatch.setattr(server_ordered_pairs, "BAND_ENTRIES", band)
    rng = np.random.default_rng(seed)
    second = _server_rows(rng, 150, order)
    lists = [_server_rows(rng, 400, order), pa.concat_tables([second.slice(0, 70), second.slice(70)])]  # two chunks
    rows = [_client_rows(rng, 300), _client_rows(rng, 50)]
    for nets in (None, [ipaddress.ip_network("0.0.0.0/27"), ipaddress.ip_network("0.0.0.40/29")]):
        protos: list[str | None] = list(PROTOS)
        pairs = ServerOrderedPairs(protos)
        pairs.add_lists(lists[0], nets)
        if pairs.spill is None:  # rows in order are one run, a few sorted regions a run each, disorder sorted
            assert len(pairs.runs) == {"sorted": 1, "runs": 3, "shuffled": 1}[order]
        pairs.add_rows(rows[0])
        pairs.add_lists(lists[1], nets)
        pairs.add_rows(rows[1])
        kept = None if nets is None else {c for c in range(50) if any(ipaddress.ip_address(c) in n for n in nets)}
        assert (pairs.spill is not None) == (held < 1 << 20)
        want = _merged(lists, rows, kept)  # client rows are narrowed by the caller's read, not here
        got = _counted(pairs, protos)
        assert got == want
        assert max(want.values()) > 3
        assert pairs.counts()[0].size == 0  # emptied


def _merged(lists: list[pa.Table], rows: list[pa.Table], kept: set[int] | None) -> dict[tuple[int, str, int], int]:
    """Per (client, proto, port), its distinct servers: a set per key."""
    seen: dict[tuple[int, str, int], set[int]] = {}
    for table in lists:
        for row in table.to_pylist():
            for client in row["clients_v4"] or []:
                if kept is None or client in kept:
                    seen.setdefault((client, row["proto"], row["server_p"]), set()).add(row["server_v4"])
    for table in rows:
        for row in table.to_pylist():
            seen.setdefault((row["client_v4"], row["proto"], row["server_p"]), set()).add(row["server_v4"])
    return {key: len(servers) for key, servers in seen.items()}


def test_nothing_added_counts_nothing() -> None:
    codes, counts = ServerOrderedPairs([]).counts()
    assert codes.size == counts.size == 0


def test_bands_hold_about_band_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge's bands cut between server ports, each about BAND_ENTRIES entries."""
    monkeypatch.setattr(server_ordered_pairs, "BAND_ENTRIES", 64)
    rng = np.random.default_rng(9)
    pairs = ServerOrderedPairs([])
    pairs.add_lists(_server_rows(rng, 500, "sorted"), None)
    bands = pairs._bands()
    assert len(bands) > 10 and bands[0][0] == 0 and bands[-1][1] is None
    sizes = [sum(int(run.entries_before(run.rows_within(lo, hi)[1]) - run.entries_before(run.rows_within(lo, hi)[0]))
                 for run in pairs.runs) for lo, hi in bands]  # fmt: skip
    assert sum(sizes) == sum(len(run.clients) for run in pairs.runs)
    assert max(sizes[:-1]) < 64 * 3 and min(sizes[:-1]) >= 64 - 64 // 8
