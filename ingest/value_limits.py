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


def reject_unset_required(table: pa.Table, rejects: RowRejects) -> None:
    """Mark the rows of `table` (Zeek field names) where a required field is unset."""
    for name in REQUIRED_FIELDS:
        if name in table.column_names:
            rejects.reject(pc.is_null(table.column(name)), f"{name}: unset")


def reject_unbelievable_times(col: pa.Array, name: str, limits: ValueLimits, rejects: RowRejects) -> None:
    """Mark the rows of timestamp `col` before 1970 or after `limits.latest_us`."""
    micros = pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    rejects.reject(np.asarray(micros < 0), f"{name}: before 1970")
    rejects.reject(np.asarray(micros > limits.latest_us), f"{name}: in the future (more than the allowed clock skew)")
