"""Parsing a run of log lines in bulk while setting bad lines aside.

A columnar parser rejects a whole block for one bad line. `parse_lines`
parses the block in one call; on an error it splits the block in two at a
newline and recurses, so k bad lines cost O(k log n) bulk re-parses, every
good line is kept, and each bad line is returned with its number and the
parser's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Quarantined:
    """A line that could not be parsed: 1-based line number, reason, raw bytes."""

    line: int
    reason: str
    text: bytes


@dataclass
class ParsedRows:
    """Decoded rows of one run of data lines, with the lines set aside."""

    tables: list[pa.Table]
    quarantined: list[Quarantined]


#: Parses complete lines into a table; returns (table, reasons) where
#: reasons is None or holds, per row, "" or why that row is rejected.
BlockParser = Callable[[pa.Buffer], tuple[pa.Table, "np.ndarray | None"]]
#: Turns a parser exception into a one-line reason.
ReasonOf = Callable[[Exception], str]


def parse_lines(data: bytes | memoryview, first_line: int, parse: BlockParser, reason_of: ReasonOf) -> ParsedRows:
    """Parse `data` (complete lines, each ending in a newline) with `parse`.

    `first_line` is the 1-based number of the first line of `data`.
    """
    out = ParsedRows([], [])
    _bisect(memoryview(data), first_line, parse, reason_of, out)
    return out


def _bisect(data: memoryview, first_line: int, parse: BlockParser, reason_of: ReasonOf, out: ParsedRows) -> None:
    try:
        table, reasons = parse(pa.py_buffer(data))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError) as err:
        raw = bytes(data)
        if raw.count(b"\n") <= 1:
            out.quarantined.append(Quarantined(first_line, reason_of(err), raw.rstrip(b"\n")))
            return
        cut = raw.find(b"\n", len(raw) // 2 - 1)
        if cut == len(raw) - 1:
            cut = raw.rfind(b"\n", 0, len(raw) - 1)
        _bisect(data[: cut + 1], first_line, parse, reason_of, out)
        _bisect(data[cut + 1 :], first_line + raw.count(b"\n", 0, cut + 1), parse, reason_of, out)
        return
    if reasons is not None:
        bad = np.flatnonzero(reasons != "")
        raw = bytes(data)
        starts = np.concatenate(([0], np.flatnonzero(np.frombuffer(raw, np.uint8) == 10) + 1))
        for i in bad:
            text = raw[starts[i] : starts[i + 1]].rstrip(b"\n")
            out.quarantined.append(Quarantined(first_line + int(i), str(reasons[i]), text))
        keep = np.ones(len(table), dtype=bool)
        keep[bad] = False
        table = table.filter(pa.array(keep))
    if len(table):
        out.tables.append(table)


class RowRejects:
    """Collects per-row rejection reasons; the first reason for a row wins."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.reasons: np.ndarray | None = None

    def reject(self, mask: pa.Array | np.ndarray, why: str) -> None:
        """Mark the rows where `mask` is true (nulls count as false)."""
        if isinstance(mask, (pa.Array, pa.ChunkedArray)):
            m = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
        else:
            m = np.asarray(mask, dtype=bool)
        if not m.any():
            return
        if self.reasons is None:
            self.reasons = np.full(self.rows, "", dtype=object)
        self.reasons[m & (self.reasons == "")] = why
