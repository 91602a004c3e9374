"""Parsing a run of log lines in bulk while setting bad lines aside.

A columnar parser rejects a whole block for one bad line. `parse_lines`
parses the block in one call; on an error it hands the block to the
reader's lenient parser when it has one (every column as text, each value
converted or marked bad: one more pass, whatever the number of bad lines),
else it splits the block in two at a newline and recurses, so k bad lines
cost O(k log n) bulk re-parses. Either way every good line is kept and
each bad line is returned with its number and the reason.
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
#: Parses every line of a block that it can; returns (table, reasons) with
#: one reason per line: "" for a line whose row is in the table (rows in
#: line order), BLANK for a line skipped silently, else why it was set aside.
LenientParser = Callable[[pa.Buffer], tuple[pa.Table, np.ndarray]]
#: What a parser raises for data it cannot parse.
_PARSE_ERRORS = (pa.ArrowException, ValueError, OverflowError)
#: The reason of a blank line: skipped, not quarantined.
BLANK = "\x00blank"


def parse_lines(
    data: bytes | memoryview,
    first_line: int,
    parse: BlockParser,
    reason_of: ReasonOf,
    lenient: LenientParser | None = None,
) -> ParsedRows:
    """Parse `data` (complete lines, each ending in a newline) with `parse`.

    `first_line` is the 1-based number of the first line of `data`.
    """
    out = ParsedRows([], [])
    view = memoryview(data)
    if lenient is None:
        _bisect(view, first_line, parse, reason_of, out)
        return out
    try:
        table, reasons = parse(pa.py_buffer(view))
    except _PARSE_ERRORS:
        try:
            table, line_reasons = lenient(pa.py_buffer(view))
        except _PARSE_ERRORS:
            # Even read as text the block does not parse (invalid UTF-8, say).
            _bisect(view, first_line, parse, reason_of, out)
            return out
        set_aside(bytes(view), first_line, line_reasons, out)
        reasons = None  # the lenient table holds only the kept lines
    _keep(table, reasons, bytes(view) if reasons is not None else b"", first_line, out)
    return out


def set_aside(raw: bytes, first_line: int, line_reasons: np.ndarray, out: ParsedRows) -> None:
    """Quarantine the lines of `raw` whose reason is neither "" nor BLANK."""
    bad = np.flatnonzero((line_reasons != "") & (line_reasons != BLANK))
    if not len(bad):
        return
    starts = np.concatenate(([0], np.flatnonzero(np.frombuffer(raw, np.uint8) == 10) + 1))
    for i in bad:
        text = raw[starts[i] : starts[i + 1]].rstrip(b"\n")
        out.quarantined.append(Quarantined(first_line + int(i), str(line_reasons[i]), text))


def _keep(table: pa.Table, reasons: np.ndarray | None, raw: bytes, first_line: int, out: ParsedRows) -> None:
    """Add `table` (one row per line of `raw`) to `out`, setting aside the rows with a reason."""
    if reasons is not None:
        set_aside(raw, first_line, reasons, out)
        table = table.filter(pa.array(reasons == ""))
    if len(table):
        out.tables.append(table)


def _bisect(data: memoryview, first_line: int, parse: BlockParser, reason_of: ReasonOf, out: ParsedRows) -> None:
    try:
        table, reasons = parse(pa.py_buffer(data))
    except _PARSE_ERRORS as err:
        raw = bytes(data)
        if raw.count(b"\n") <= 1:
            if raw.rstrip(b"\n"):  # a blank line is skipped, not set aside
                out.quarantined.append(Quarantined(first_line, reason_of(err), raw.rstrip(b"\n")))
            return
        cut = raw.find(b"\n", len(raw) // 2 - 1)
        if cut == len(raw) - 1:
            cut = raw.rfind(b"\n", 0, len(raw) - 1)
        _bisect(data[: cut + 1], first_line, parse, reason_of, out)
        _bisect(data[cut + 1 :], first_line + raw.count(b"\n", 0, cut + 1), parse, reason_of, out)
        return
    _keep(table, reasons, bytes(data) if reasons is not None else b"", first_line, out)


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

    def reject_each(self, rows: np.ndarray, whys: list[str]) -> None:
        """Mark the rows at positions `rows`, each with its own reason."""
        if not len(rows):
            return
        if self.reasons is None:
            self.reasons = np.full(self.rows, "", dtype=object)
        for row, why in zip(rows, whys):
            if self.reasons[row] == "":
                self.reasons[row] = why
