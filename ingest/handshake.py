"""The handshake rules: who is the server of a connection, if anyone.

One place for DESIGN.md's "Outcome of a TCP handshake", vectorized: the
letter tests run once per distinct `history` value (a dictionary), the
per-row work is numpy selection over those results. The README's outcome
table is this module's contract (tests/test_handshake.py checks each row).

TCP, from Zeek's history (upper case: originator, lower case: responder):

* `h` (responder sent SYN-ACK) -> open, server = responder
* `H` without `h` (originator sent the SYN-ACK) -> open, server = originator
* `S`, no SYN-ACK seen, and the responder then sent data (`d` before any
  `r` of its own) or acknowledged in a state Zeek calls established (`a`
  with S1, SF, S2, S3, RSTO, RSTR) -> inferred: the sensor missed the
  SYN-ACK (a SPAN port dropping packets); server = responder
* `S`, no SYN-ACK, the responder's first answer a reset (`r` before any
  `d`) -> rejected; the refusing host:port is recorded in server_h/server_p
  (conn_state REJ decides only where there is no history to read)
* `S` and nothing at all from the responder (no lower-case letter, no
  packet) -> unanswered
* `S` and something from the responder that is none of the above (a bare
  `a` Zeek calls S0, a FIN, a bad checksum) -> ambiguous: not a server
* no SYN, no SYN-ACK (mid-stream pickup) -> midstream

Suricata flow events (a `tcp_flags_tc` column, the flags the server side
sent, OR-ed): SYN -> open, server = dest; PSH without SYN after a client
SYN -> inferred; RST without SYN or PSH -> rejected; a client SYN and no
packet back -> unanswered; a client SYN and other packets back ->
ambiguous; else midstream.

UDP: answered when the responder sent packets, else unanswered; an answer
"from" a multicast or broadcast address is no service (no server).
Other transports (ICMP type/code in the port fields) -> none.

synack's Zeek package writes a `handshake` column by the same rules. Where
a row has a history, the history decides (so logs of older package
versions, which said `unanswered` for a missed SYN-ACK, read right); the
column decides only rows without one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest import addresses
from synack.ingest.arrays import one_array
from synack.ingest.schema import (
    AMBIGUOUS,
    ANSWERED,
    INFERRED,
    MIDSTREAM,
    NO_PORTS,
    OPEN,
    OUTCOMES,
    REJECTED,
    UNANSWERED,
)

_CODE = {name: i for i, name in enumerate(OUTCOMES)}
_OUTCOME_DICTIONARY = pa.array(OUTCOMES, pa.string())

#: Regular expressions over a history, each tested once per distinct value.
_HISTORY_TESTS = {
    "syn": "S",
    "synack": "h",
    "synack_orig": "H",
    # The responder's first data or reset after the originator's first SYN.
    "data_first": "^[^S]*S[^dr]*d",
    "reset_first": "^[^S]*S[^dr]*r",
    "ack": "^[^S]*S.*a",
    "responder": "[a-z]",
}
#: The conn_states Zeek gives a connection it saw established.
_ESTABLISHED = pa.array(["S1", "SF", "S2", "S3", "RSTO", "RSTR"])
_SYN, _RST, _PSH = 0x02, 0x04, 0x08

#: synack's Zeek `handshake` values -> (outcome, server is the originator).
HANDSHAKE_VALUES: dict[str, tuple[str, bool]] = {
    "open": (OPEN, False),
    "open_orig": (OPEN, True),
    "rejected": (REJECTED, False),
    "unanswered": (UNANSWERED, False),
    "inferred": (INFERRED, False),
    "ambiguous": (AMBIGUOUS, False),
    "midstream": (MIDSTREAM, False),
    "answered": (ANSWERED, False),
}


class _Distinct:
    """A column's distinct values and each row's index into them (a null
    row points one past the end), so a test runs once per distinct value."""

    def __init__(self, col: pa.Array) -> None:
        if not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        self.values = col.dictionary
        self._index = pc.fill_null(col.indices, len(self.values)).to_numpy(zero_copy_only=False)

    def test(self, fn: Callable[[pa.Array], pa.Array]) -> np.ndarray:
        """Per row, `fn` (a boolean kernel) of its value; False for a null."""
        flags = np.asarray(pc.fill_null(fn(self.values), False).to_numpy(zero_copy_only=False), dtype=bool)
        return np.append(flags, False)[self._index]


def _pick_hosts(
    orig_h: pa.Array, resp_h: pa.Array, server_is_orig: np.ndarray, has_server: np.ndarray
) -> tuple[pa.DictionaryArray, pa.DictionaryArray]:
    """(server_h, client_h) as dictionary arrays over one unified dictionary,
    chosen row by row from the two address columns without decoding them."""
    if not pa.types.is_dictionary(orig_h.type):
        orig_h = orig_h.dictionary_encode()
    if not pa.types.is_dictionary(resp_h.type):
        resp_h = resp_h.dictionary_encode()
    values = pc.unique(pa.concat_arrays([orig_h.dictionary.cast(pa.string()), resp_h.dictionary.cast(pa.string())]))
    orig_map = pc.index_in(orig_h.dictionary, values).to_numpy(zero_copy_only=False)
    resp_map = pc.index_in(resp_h.dictionary, values).to_numpy(zero_copy_only=False)
    orig_idx = orig_map[pc.fill_null(orig_h.indices, 0).to_numpy(zero_copy_only=False)]
    resp_idx = resp_map[pc.fill_null(resp_h.indices, 0).to_numpy(zero_copy_only=False)]
    server = np.where(server_is_orig, orig_idx, resp_idx).astype(np.int32)
    client = np.where(server_is_orig, resp_idx, orig_idx).astype(np.int32)
    mask = ~has_server
    return (
        pa.DictionaryArray.from_arrays(pa.array(server, mask=mask), values),
        pa.DictionaryArray.from_arrays(pa.array(client, mask=mask), values),
    )


def _column(table: pa.Table, name: str) -> pa.Array | None:
    if name not in table.column_names:
        return None
    col = table.column(name)
    return one_array(col)


def _flag_bits(col: pa.Array | None, n: int) -> np.ndarray:
    """Suricata's hex TCP flag strings ("1b") as integers, parsed once per distinct value; null -> 0."""
    if col is None:
        return np.zeros(n, dtype=np.int64)
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    values = []
    for text in col.dictionary.to_pylist():
        try:
            bits = int(text, 16)
        except (TypeError, ValueError):
            bits = 0
        values.append(bits if 0 <= bits <= 0xFFFF else 0)  # TCP flags are 8 bits (9 with NS)
    lookup = np.array(values + [0], dtype=np.int64)
    return lookup[pc.fill_null(col.indices, len(values)).to_numpy(zero_copy_only=False)]


def _required(table: pa.Table, name: str) -> pa.Array:
    col = _column(table, name)
    if col is None:
        raise KeyError(f"derive_outcome needs a {name} column")
    return col


def derive_outcome(table: pa.Table) -> dict[str, pa.Array]:
    """Return the arrays `outcome`, `server_h`, `server_p`, `client_h` for
    `table` (normalized names: proto, history, conn_state, resp_pkts,
    orig_h/orig_p/resp_h/resp_p, optionally handshake), one value per row."""
    n = len(table)
    proto = _Distinct(_required(table, "proto"))
    is_tcp = proto.test(lambda d: pc.equal(pc.utf8_lower(d), "tcp"))
    is_udp = proto.test(lambda d: pc.equal(pc.utf8_lower(d), "udp"))

    history_column = _column(table, "history")
    history = _Distinct(history_column if history_column is not None else pa.nulls(n, pa.string()))
    has_history = history.test(pc.is_valid)
    letters = {name: history.test(functools.partial(pc.match_substring_regex, pattern=rx))
               for name, rx in _HISTORY_TESTS.items()}  # fmt: skip
    state_column = _column(table, "conn_state")
    state = _Distinct(state_column if state_column is not None else pa.nulls(n, pa.string()))
    rej = state.test(lambda d: pc.equal(d, "REJ"))
    established = state.test(lambda d: pc.is_in(d, _ESTABLISHED))

    resp_pkts = _column(table, "resp_pkts")
    answered = (
        np.asarray(
            pc.fill_null(pc.greater(resp_pkts, pa.scalar(0, resp_pkts.type)), False).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        if resp_pkts is not None
        else np.zeros(n, bool)
    )

    syn = letters["syn"] & ~letters["synack"] & ~letters["synack_orig"]
    inferred = syn & (letters["data_first"] | (letters["ack"] & established))
    rejected = ~inferred & ((syn & letters["reset_first"]) | (rej & ~has_history))
    unanswered = syn & ~letters["responder"] & ~answered

    codes = np.full(n, _CODE[NO_PORTS], dtype=np.int8)
    codes[is_tcp] = _CODE[MIDSTREAM]
    codes[is_tcp & syn] = _CODE[AMBIGUOUS]
    codes[is_tcp & unanswered] = _CODE[UNANSWERED]
    codes[is_tcp & rejected] = _CODE[REJECTED]
    codes[is_tcp & inferred] = _CODE[INFERRED]
    codes[is_tcp & (letters["synack"] | letters["synack_orig"])] = _CODE[OPEN]
    codes[is_udp] = np.where(answered[is_udp], _CODE[ANSWERED], _CODE[UNANSWERED])
    server_is_orig = is_tcp & letters["synack_orig"] & ~letters["synack"]

    flags_tc = _column(table, "tcp_flags_tc")
    if flags_tc is not None:
        # Suricata: the flags each side sent decide; a SYN from the server
        # side is its SYN-ACK (Suricata orients the flow so dest = server).
        tc = _flag_bits(flags_tc, n)
        client_syn = _flag_bits(_column(table, "tcp_flags_ts"), n) & _SYN != 0
        server_syn, server_push, server_reset = tc & _SYN != 0, tc & _PSH != 0, tc & _RST != 0
        suricata = np.full(n, _CODE[MIDSTREAM], dtype=np.int8)
        suricata[client_syn] = np.where(answered[client_syn], _CODE[AMBIGUOUS], _CODE[UNANSWERED])
        suricata[server_reset & ~server_push] = _CODE[REJECTED]
        suricata[client_syn & server_push] = _CODE[INFERRED]
        suricata[server_syn] = _CODE[OPEN]
        codes[is_tcp] = suricata[is_tcp]
        server_is_orig[:] = False

    handshake_column = _column(table, "handshake")
    if handshake_column is not None:
        handshake = _Distinct(handshake_column)
        for value, (outcome, orig) in HANDSHAKE_VALUES.items():
            hit = handshake.test(functools.partial(pc.equal, value)) & ~has_history
            codes[hit] = _CODE[outcome]
            server_is_orig[hit] = orig

    resp_h = _required(table, "resp_h")
    resp_multicast = _Distinct(resp_h).test(addresses.not_unicast)
    placed = np.isin(codes, [_CODE[OPEN], _CODE[INFERRED], _CODE[REJECTED]])
    has_server = placed | ((codes == _CODE[ANSWERED]) & ~resp_multicast)
    server_is_orig &= has_server

    server_h, client_h = _pick_hosts(_required(table, "orig_h"), resp_h, server_is_orig, has_server)
    orig_p = _required(table, "orig_p").to_numpy(zero_copy_only=False)
    resp_p = _required(table, "resp_p").to_numpy(zero_copy_only=False)
    server_p = pa.array(np.where(server_is_orig, orig_p, resp_p).astype(np.uint16), mask=~has_server)
    outcome = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), _OUTCOME_DICTIONARY)
    return {
        "outcome": outcome,
        "server_h": server_h,
        "server_p": server_p,
        "client_h": client_h,
    }
