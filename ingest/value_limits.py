"""Which record times are believable: checked on every line as it is parsed.

A `ts` before 1970 or later than the ingest's wall clock plus a skew
allowance (a sensor's clock running ahead; default one day) sets its line
aside ("in the future"), so no stored record can break date arithmetic or
move "now" for the queries and the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.line_parsing import RowRejects

#: How far past the ingest's wall clock a record may lie, by default.
DEFAULT_CLOCK_SKEW_SECONDS = 86_400.0
#: A line longer than this is no record (a conn record is a few hundred
#: bytes, a server reply at most a few KB): it is quarantined by reference
#: (its file, line number, offset and length), never held whole. A setting
#: (`--max-line-bytes`), at least MIN_LINE_BYTES.
DEFAULT_MAX_LINE_BYTES = 1 << 20
MIN_LINE_BYTES = 4096


def _now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass(frozen=True)
class ValueLimits:
    """The latest believable record time, fixed when the limits are made,
    and the longest line read as a record."""

    clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS
    now_us: int = field(default_factory=_now_us)
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    @property
    def latest_us(self) -> int:
        return self.now_us + int(self.clock_skew_seconds * 1_000_000)


#: The fields every conn record has (Zeek's names): a line with one unset is set aside.
REQUIRED_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")


def reject_malformed(table: pa.Table, rejects: RowRejects, connections: bool = True) -> None:
    """Mark the rows of `table` (Zeek field names, addresses in canonical
    text) where a required field is unset, and with `connections` (rows of
    a conn log or of eve.json flows) those whose two hosts are of different
    address families: a connection never is (Zeek and Suricata log a
    tunnelled one by its inner or outer addresses, each pair of one
    family), and a stored one would name its IPv4 client's IPv6 server by
    the number that stands for "not IPv4" (255.255.255.255)."""
    for name in REQUIRED_FIELDS:
        if name in table.column_names:
            rejects.reject(pc.is_null(table.column(name)), f"{name}: unset")
    if connections and "id.orig_h" in table.column_names and "id.resp_h" in table.column_names:
        orig, resp = (_is_ipv6(table.column(name)) for name in ("id.orig_h", "id.resp_h"))
        rejects.reject(orig != resp, "id.orig_h, id.resp_h: of different address families")


def _is_ipv6(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Whether each address of a text (or dictionary-encoded text) column
    is an IPv6 one (a colon in its text); False where unset."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        found = pc.take(pc.match_substring(column.dictionary, ":"), column.indices)
    else:
        found = pc.match_substring(column, ":")
    return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)


def reject_unbelievable_times(col: pa.Array, name: str, limits: ValueLimits, rejects: RowRejects) -> None:
    """Mark the rows of timestamp `col` before 1970 or after `limits.latest_us`."""
    micros = pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    rejects.reject(np.asarray(micros < 0), f"{name}: before 1970")
    rejects.reject(np.asarray(micros > limits.latest_us), f"{name}: in the future (more than the allowed clock skew)")
