"""Reader for Zeek's ASCII (TSV) log format.

Everything comes from the `#` header: separator, set separator, the unset
and empty markers, field names and types. Data lines are parsed by
pyarrow's CSV reader with quoting off (Zeek does not quote, so `"` and `#`
inside values are ordinary bytes), then decoded column by column with
vectorized kernels. A data line never starts with `#` (Zeek escapes it as
`\\x23`), so every line that does is a header or `#close` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from synack.ingest import addresses
from synack.ingest.arrays import one_array
from synack.ingest.lenient import cast_text
from synack.ingest.line_parsing import BLANK, ParsedRows, RowRejects, parse_lines, set_aside
from synack.ingest.normalize import missing_required
from synack.ingest.schema import BINARY_COLUMNS, CONN_FIELD_TYPES, SCALAR_TYPES, TIMESTAMP, arrow_type
from synack.ingest.value_limits import ValueLimits, reject_malformed, reject_unbelievable_times
from synack.ingest.zeek_escapes import decode_escapes

#: Byte that replaces a multi-byte separator before parsing; Zeek escapes
#: every non-printable byte in values, so it cannot occur in data.
_SUBSTITUTE_SEPARATOR = b"\x1f"


@dataclass(frozen=True)
class ZeekHeader:
    """The settings of one `#separator ... #types` header block."""

    separator: bytes = b"\t"
    set_separator: bytes = b","
    empty_field: bytes = b"(empty)"
    unset_field: bytes = b"-"
    path: str | None = None
    open: str | None = None
    fields: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    raw: bytes = b""
    #: Why the block cannot be used ("" when it can): its data lines are set aside.
    problem: str = ""

    @property
    def complete(self) -> bool:
        """True when the block has fields and types of equal length."""
        return bool(self.fields) and len(self.fields) == len(self.types)

    def unusable(self, conn: bool = False) -> str:
        """Why data lines under this block cannot be read (as conn records,
        with `conn`: the required conn fields must be there), or ""."""
        if self.problem:
            return self.problem
        if not self.fields or not self.types:
            given = "#fields without #types" if self.fields else "#types without #fields" if self.types else ""
            return given or "no #fields and #types line before it"
        if len(self.fields) != len(self.types):
            return f"#fields has {len(self.fields)} names, #types {len(self.types)}"
        missing = missing_required(self.fields) if conn else []
        return f"its header has no {', '.join(missing)} field" if missing else ""


def _unescape_meta(value: bytes) -> bytes:
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value)


@dataclass
class HeaderBuilder:
    """Accumulates meta lines into the header block currently in force."""

    current: ZeekHeader = field(default_factory=ZeekHeader)
    closed: bool = False
    #: Header blocks begun so far (each `#separator` line begins one).
    blocks: int = 0
    #: (block number, position in the buffer split) of the blocks begun by the last split_block.
    begun: list[tuple[int, int]] = field(default_factory=list)
    #: What starts a meta line (`LogAscii::meta_prefix`, "#" unless redefined).
    meta_prefix: bytes = b"#"

    def feed(self, line: bytes) -> None:
        """Apply one meta line (starting with the meta prefix, no newline).

        A malformed block (an empty `#separator`, duplicate `#fields`
        names) is recorded in the header's `problem`, not raised: the lines
        under it are set aside, the rest of the log is read.
        """
        h = self.current
        body = line[len(self.meta_prefix) :]
        if body.startswith(b"separator"):
            rest = body[len(b"separator") :]
            rest = rest[1:] if rest[:1] == b"\t" else rest.strip(b" ")  # a tab after it, as zeek-cut accepts
            sep = _unescape_meta(rest)
            problem = "" if sep else "empty #separator"
            self.current = ZeekHeader(separator=sep or b"\t", raw=line + b"\n", problem=problem)
            self.closed = False
            self.blocks += 1
            return
        key, value = self._split(body, h.separator)
        raw = h.raw + line + b"\n"
        sep = h.separator
        if key == "set_separator":
            self.current = replace(h, set_separator=_unescape_meta(value), raw=raw)
        elif key == "empty_field":
            self.current = replace(h, empty_field=_unescape_meta(value), raw=raw)
        elif key == "unset_field":
            self.current = replace(h, unset_field=_unescape_meta(value), raw=raw)
        elif key == "path":
            self.current = replace(h, path=value.decode("utf-8", "replace"), raw=raw)
        elif key == "open":
            self.current = replace(h, open=value.decode("utf-8", "replace"), raw=raw)
        elif key == "fields":
            names = tuple(v.decode("utf-8", "replace") for v in value.split(sep))
            problem = h.problem or ("duplicate names in #fields" if len(set(names)) != len(names) else "")
            self.current = replace(h, fields=names, raw=raw, problem=problem)
        elif key == "types":
            self.current = replace(h, types=tuple(v.decode("ascii", "replace") for v in value.split(sep)), raw=raw)
        elif key == "close":
            self.closed = True
        # Other meta lines (comments, banners) are ignored, as Zeek's reader does.

    @staticmethod
    def _split(body: bytes, sep: bytes) -> tuple[str, bytes]:
        pos = body.find(sep)
        # Masked test baselines put a space where Zeek writes the separator.
        space = body.find(b" ")
        if pos < 0 or (0 <= space < pos):
            pos, width = space, 1
        else:
            width = len(sep)
        if pos < 0:
            return body.decode("ascii", "replace"), b""
        return body[:pos].decode("ascii", "replace"), body[pos + width :]


def _read_type(zeek_type: str, name: str) -> pa.DataType:
    """The type pyarrow's CSV reader parses a column as, before decoding."""
    target = arrow_type(zeek_type, name)
    if pa.types.is_list(target) or pa.types.is_timestamp(target):
        return pa.string() if pa.types.is_list(target) else pa.float64()
    if name in BINARY_COLUMNS:
        return pa.binary()
    return target


_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): (?:CSV conversion error to )?(.*)")
_COUNT_ERROR = re.compile(r"Expected (\d+) columns, got (\d+)")


def _reason(err: Exception, header: ZeekHeader) -> str:
    msg = str(err).split("\n")[0]
    m = _COLUMN_ERROR.search(msg)
    if m:
        i = int(m.group(1))
        name = header.fields[i] if i < len(header.fields) else f"#{i}"
        ztype = header.types[i] if i < len(header.types) else "?"
        return f"{name} ({ztype}): {m.group(2)}"[:300]
    m = _COUNT_ERROR.search(msg)
    if m:
        return f"expected {m.group(1)} fields, got {m.group(2)}"
    return msg[:300]


def _csv_options(header: ZeekHeader, size: int) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    """The CSV reader's options for `size` bytes of data lines under `header`:
    one CSV block for the whole data, so each column comes as one chunk,
    which the decoding then uses without copying (the ingest parses
    several blocks at once on its own threads)."""
    delimiter = header.separator if len(header.separator) == 1 else _SUBSTITUTE_SEPARATOR
    read = pacsv.ReadOptions(column_names=list(header.fields), block_size=max(size + 1, 1 << 20), use_threads=False)
    parse = pacsv.ParseOptions(
        delimiter=delimiter.decode("latin-1"),
        quote_char=False,
        double_quote=False,
        escape_char=False,
        newlines_in_values=False,
        ignore_empty_lines=False,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: _read_type(t, n) for n, t in zip(header.fields, header.types)},
        null_values=[header.unset_field.decode("latin-1")],
        strings_can_be_null=True,
        true_values=["T"],
        false_values=["F"],
    )
    return read, parse, convert


def with_core_types(header: ZeekHeader) -> ZeekHeader:
    """`header` with the conn fields synack relies on typed as Zeek types them,
    whatever the header says (`id.orig_p` typed `count`, `ts` typed `string`):
    a value that is not of that type sets its line aside instead of breaking
    the column."""
    types = tuple(
        core if (core := CONN_FIELD_TYPES.get(name)) in SCALAR_TYPES else ztype
        for name, ztype in zip(header.fields, header.types)
    )
    return header if types == header.types else replace(header, types=types)


def read_rows(
    data: bytes | memoryview,
    header: ZeekHeader,
    first_line: int,
    limits: ValueLimits | None = None,
    conn: bool = False,
) -> ParsedRows:
    """Parse complete data lines `data` (ending in newline) under `header`.

    Returns tables with Zeek's field names and the normalized Arrow types
    (see schema.arrow_type), values decoded; lines that fail to parse or to
    decode are returned as Quarantined with their 1-based line number
    (`first_line` is the number of the first line of `data`); blank lines
    are skipped, and so are records whose time is unbelievable (`limits`).
    """
    limits = limits or ValueLimits()
    problem = header.unusable(conn)
    if problem:
        return _set_aside_all(data, first_line, f"under a bad header block: {problem}")
    header = with_core_types(header)
    if (np.frombuffer(data, np.uint8) == 13).any():  # no copy; `in` on a memoryview would walk it in Python
        # Zeek escapes a CR in a value; a raw one (a CRLF copy of a log, a
        # damaged line) would end a row for the CSV reader: CRLF becomes LF,
        # a lone CR the escape Zeek would have written.
        data = bytes(data).replace(b"\r\n", b"\n").replace(b"\r", b"\\x0d")
    if len(header.separator) != 1:
        data = bytes(data).replace(header.separator, _SUBSTITUTE_SEPARATOR)
    read, parse, convert = _csv_options(header, len(data))

    def parse_block(buf: pa.Buffer) -> tuple[pa.Table, np.ndarray | None]:
        table = pacsv.read_csv(buf, read, parse, convert)
        return _decode_columns(table, header, limits, conn)

    def parse_leniently(buf: pa.Buffer) -> tuple[pa.Table, np.ndarray]:
        return _parse_leniently(buf, header, limits, conn)

    return parse_lines(data, first_line, parse_block, lambda err: _reason(err, header), parse_leniently)


def _set_aside_all(data: bytes | memoryview, first_line: int, reason: str) -> ParsedRows:
    """Every non-blank line of `data` quarantined with `reason`."""
    raw = bytes(data)
    reasons = np.array([reason if line else BLANK for line in raw.split(b"\n")[:-1]], dtype=object)
    out = ParsedRows([], [])
    set_aside(raw, first_line, reasons, out)
    return out


def _parse_leniently(buf: pa.Buffer, header: ZeekHeader, limits: ValueLimits,
                     conn: bool) -> tuple[pa.Table, np.ndarray]:  # fmt: skip
    """Parse every line of `buf` that can be: each column read as text, then
    converted value by value. Returns (table, reasons per line): see
    line_parsing.LenientParser."""
    raw = np.frombuffer(buf, np.uint8)
    if (raw >= 0x80).any():
        try:
            bytes(buf).decode("utf-8")
        except UnicodeDecodeError:
            # Arrow decodes a wrong-width line as UTF-8 before calling the row
            # handler below, and raises inside itself on such bytes: bisect instead.
            raise ValueError("the block holds bytes that are not UTF-8") from None
    ends = np.flatnonzero(raw == 10)
    blank = np.diff(np.concatenate(([-1], ends))) == 1  # the reader reads a blank line as a row
    line_reasons = np.full(len(ends), "", dtype=object)

    unplaced: list[int | None] = []

    def wrong_width(row: pacsv.InvalidRow) -> str:
        # Never raises: the reader would swallow the exception and keep the row.
        if row.number is None or not 0 < row.number <= len(line_reasons):
            unplaced.append(row.number)
        else:
            line_reasons[row.number - 1] = (
                BLANK if row.text == "" else f"expected {row.expected_columns} fields, got {row.actual_columns}"
            )
        return "skip"

    read, parse, convert = _csv_options(header, len(buf))
    parse = pacsv.ParseOptions(
        delimiter=parse.delimiter, quote_char=False, double_quote=False, escape_char=False,
        newlines_in_values=False, ignore_empty_lines=False, invalid_row_handler=wrong_width,
    )  # fmt: skip
    text_types = {name: (pa.binary() if name in BINARY_COLUMNS else pa.string()) for name in header.fields}
    convert = pacsv.ConvertOptions(column_types=text_types, null_values=convert.null_values, strings_can_be_null=True)
    table = pacsv.read_csv(buf, read, parse, convert)
    if unplaced or len(table) != int((line_reasons == "").sum()):
        raise ValueError("the lenient parse lost track of line numbers")  # the caller bisects instead
    rejects = RowRejects(len(table))
    rejects.reject(blank[line_reasons == ""], BLANK)
    columns = []
    for name, ztype, col in zip(header.fields, header.types, table.columns):
        target = _read_type(ztype, name)
        if not (pa.types.is_string(target) or pa.types.is_binary(target) or pa.types.is_dictionary(target)):
            text = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            col, bad = cast_text(text, target)
            rows = np.flatnonzero(bad)
            shown = text.take(pa.array(rows)).to_pylist()
            rejects.reject_each(rows, [f"{name} ({ztype}): not a {ztype}: {value[:40]!r}" for value in shown])
        elif pa.types.is_dictionary(target):
            col = col.combine_chunks().dictionary_encode()
        columns.append(col)
    decoded, reasons = _decode_columns(pa.table(columns, names=list(header.fields)), header, limits, conn)
    if rejects.reasons is not None:
        reasons = rejects.reasons if reasons is None else np.where(rejects.reasons != "", rejects.reasons, reasons)
    kept = line_reasons == ""
    if reasons is not None:
        line_reasons[np.flatnonzero(kept)] = reasons
        decoded = decoded.filter(pa.array(reasons == ""))
    return decoded, line_reasons


@dataclass(frozen=True)
class Segment:
    """A run of data lines and the header block they are written under."""

    header: ZeekHeader
    data: memoryview
    first_line: int
    block: int = 0  # which header block of the stream it is under (HeaderBuilder.blocks)
    at: int = 0  # where its data begins in the buffer split


def split_block(
    block: bytes | bytearray, builder: HeaderBuilder, first_line: int, end: int | None = None
) -> list[Segment]:
    """Split complete lines `block[:end]` of an ASCII log into data segments.

    Meta lines update `builder` (so a block may hold several header blocks,
    as concatenated logs do); each run of data lines between them becomes a
    Segment carrying the header then in force. `first_line` numbers the
    first line of `block`. This is the sequential part of reading a log;
    the segments can then be parsed in any order, on any thread.
    """
    size = len(block) if end is None else end
    view = memoryview(block)[:size]
    prefix = builder.meta_prefix
    marker = b"\n" + prefix
    segments: list[Segment] = []
    pos, line_no = 0, first_line
    builder.begun = []
    while pos < size:
        if block.startswith(prefix, pos):
            end = block.find(b"\n", pos, size)
            end = size if end < 0 else end
            begun = builder.blocks
            builder.feed(bytes(block[pos:end]))
            if builder.blocks != begun:
                builder.begun.append((builder.blocks, pos))
            pos, line_no = end + 1, line_no + 1
            continue
        nxt = _find_line_starting(block, marker, pos, size)
        seg_end = size if nxt < 0 else nxt + 1
        segments.append(Segment(builder.current, view[pos:seg_end], line_no, builder.blocks, pos))
        if nxt >= 0:
            line_no += block.count(b"\n", pos, seg_end)
        pos = seg_end
    return segments


#: Stray marker bytes inside values tolerated before a search falls back to the two-byte pattern.
_STRAY_MARKERS = 64


def _find_line_starting(block: bytes | bytearray, marker: bytes, pos: int, size: int) -> int:
    """`block.find(marker, pos, size)` for a `marker` of a newline and a line prefix.

    The prefix's first byte ("#") is rare in data lines, and a one-byte
    search (memchr) is some 15x faster than CPython's two-byte one, which
    dominated reading a block. A block with many stray "#"s falls back to it.
    """
    first = marker[1:2]
    at = block.find(first, pos + 1, size)
    for _ in range(_STRAY_MARKERS):
        if at < 0:
            return -1
        if block[at - 1] == 0x0A and block.startswith(marker, at - 1):
            return at - 1
        at = block.find(first, at + 1, size)
    return block.find(marker, max(pos, at - 1), size) if at >= 0 else -1


def read_segments(segments: list[Segment], limits: ValueLimits | None = None, conn: bool = False) -> ParsedRows:
    """Parse data segments into tables, setting bad lines aside (and, with
    `conn`, the lines under a header block that lacks a required conn field)."""
    out = ParsedRows([], [])
    limits = limits or ValueLimits()
    for seg in segments:
        parsed = read_rows(seg.data, seg.header, seg.first_line, limits, conn)
        out.tables.extend(parsed.tables)
        out.quarantined.extend(parsed.quarantined)
    return out


def read_block(block: bytes | bytearray, builder: HeaderBuilder, first_line: int) -> ParsedRows:
    """Parse complete lines `block` of an ASCII log, header lines included."""
    return read_segments(split_block(block, builder, first_line))


def _decode_columns(table: pa.Table, header: ZeekHeader, limits: ValueLimits,
                    conn: bool) -> tuple[pa.Table, np.ndarray | None]:  # fmt: skip
    """Decode each column to its normalized type (rows of a conn log with
    `conn`: see reject_malformed); return (table, reasons).

    `reasons` is None when every row decoded, else an array holding, per
    row, "" or why the row is rejected.
    """
    rejects = RowRejects(len(table))
    reject = rejects.reject

    empty = header.empty_field.decode("utf-8", "replace")
    columns = []
    for name, ztype, col in zip(header.fields, header.types, table.columns):
        target = arrow_type(ztype, name)
        col = one_array(col)
        if pa.types.is_timestamp(target):
            col = float_seconds_to_timestamp(col)
            if name == "ts":
                reject(pc.is_null(col), "ts: unset")
            reject_unbelievable_times(col, name, limits, rejects)
        elif pa.types.is_list(target):
            col, bad = _decode_set(col, header, target)
            reject(bad, f"{name}: bad escape")
        elif pa.types.is_dictionary(target):
            dictionary = col.dictionary
            decoded, bad = decode_escapes(pc.if_else(pc.equal(dictionary, empty), "", dictionary))
            if ztype == "addr":
                decoded, invalid = addresses.canonical(decoded)
                reject(pc.take(invalid, col.indices), f"{name}: invalid address")
            reject(pc.fill_null(pc.take(bad, col.indices), False), f"{name}: bad escape")
            col = pa.DictionaryArray.from_arrays(col.indices, decoded)
        elif pa.types.is_binary(target) or pa.types.is_string(target):
            as_text = pa.types.is_string(target)
            is_empty = pc.equal(col, pa.scalar(header.empty_field if not as_text else empty, col.type))
            if pc.any(is_empty).as_py():
                col = pc.if_else(is_empty, pa.scalar(b"" if not as_text else "", col.type), col)
            col, bad = decode_escapes(col, as_text=as_text)
            reject(bad, f"{name}: bad escape")
        columns.append(col)
    decoded = pa.table(columns, names=list(header.fields))
    reject_malformed(decoded, rejects, connections=conn)
    return decoded, rejects.reasons


def _decode_set(col: pa.Array, header: ZeekHeader, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Split a set/vector column into a list column of decoded elements."""
    empty = header.empty_field.decode("utf-8", "replace")
    is_empty = pc.fill_null(pc.equal(col, empty), False)
    split = pc.split_pattern(col, header.set_separator.decode("utf-8", "replace"))
    split = pc.if_else(is_empty, pa.scalar([], split.type), split)
    flat = pc.list_flatten(split)
    decoded, bad_elements = decode_escapes(flat)
    value_type = target.value_type
    if pa.types.is_timestamp(value_type):
        decoded = float_seconds_to_timestamp(decoded.cast(pa.float64()))
    elif value_type != pa.string():
        decoded = decoded.cast(value_type)  # ArrowInvalid: the caller quarantines the line
    parents = pc.list_parent_indices(split).to_numpy()
    bad = np.zeros(len(col), dtype=bool)
    bad[parents[bad_elements.to_numpy(zero_copy_only=False)]] = True
    offsets = split.offsets
    lists = pa.ListArray.from_arrays(offsets, decoded, mask=pc.is_null(split))
    return lists, bad


def float_seconds_to_timestamp(col: pa.Array) -> pa.Array:
    """Epoch seconds (float64) -> timestamp[us, UTC], rounded to the microsecond."""
    col = one_array(col)
    seconds = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        # Beyond +-1e11 s (year 5138) and infinities are clipped there: still
        # representable, and then set aside as unbelievable by value_limits.
        micros = np.rint(np.clip(seconds, -1e11, 1e11) * 1e6)
    nulls = np.isnan(micros)
    micros[nulls] = 0
    return pa.array(micros.astype(np.int64), mask=nulls if nulls.any() else None).cast(TIMESTAMP)
