"""A log file as a source of normalized records: identity and chunks.

A source is identified by its content, not its name: the header block and
first data line of a Zeek ASCII log (whose `#open` stamp and first uid make
it unique), or the first line of a JSON log. So the live `conn.log` and the
same log rotated into `2026-11-21/conn.10:00:00-11:00:00.log.gz` are one
source, and an ingest resumes it at the byte offset the ledger committed.
Offsets count uncompressed bytes; gzip is recognized by its magic bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from synack.ingest import suricata_eve, suricata_identity, zeek_ascii, zeek_json
from synack.ingest.errors import NotAConnLog, NotAZeekLog
from synack.ingest.ledger import BlockMark
from synack.ingest.line_parsing import Quarantined
from synack.ingest.log_blocks import BlockTracker, KnownBlocks, block_id
from synack.ingest.normalize import missing_required, normalize
from synack.ingest.schema import CORE_SCHEMA
from synack.ingest.sensor_notices import normalize_notices
from synack.ingest.server_identity import (
    ASCII_IDENTITY_KINDS,
    IDENTITY_KINDS,
    IDENTITY_LOGS,
    SURICATA_EVE_IDENTITY,
    identity_kind,
    json_identity_log,
    merged_facts,
    normalize_identity,
)
from synack.ingest.value_limits import DEFAULT_MAX_LINE_BYTES, ValueLimits

ZEEK_ASCII = "zeek-ascii"
ZEEK_JSON = "zeek-json"
SURICATA_EVE = "suricata-eve"
#: notice.log, ASCII and JSON: the sensor's SynAck notices (ingest.sensor_notices).
ZEEK_NOTICE = "zeek-notice"
ZEEK_NOTICE_JSON = "zeek-notice-json"
NOTICE_KINDS = (ZEEK_NOTICE, ZEEK_NOTICE_JSON)
#: Kinds whose ASCII log a `#close` line ends: it gets no more lines.
CLOSING_KINDS = (ZEEK_ASCII, ZEEK_NOTICE, *ASCII_IDENTITY_KINDS)


def is_json_kind(kind: str) -> bool:
    """Whether sources of `kind` are JSON lines (Zeek's JSON writer, Suricata's EVE), not Zeek's ASCII format."""
    return kind.endswith("-json") or kind.startswith("suricata-")


#: Uncompressed bytes per chunk: one commit, one Parquet file per day. 16 MB
#: (~90,000 conn records): 12% less CPU than 12 MB on the bench's 32M-record
#: day (fewer, larger partials), peak memory 410 MB; 24 MB nears 500 MB.
DEFAULT_CHUNK_BYTES = 16 << 20
_IDENTIFY_BYTES = 1 << 20
#: The smallest read buffer of a plain file (see read_blocks).
_SMALL_BUFFER = 1 << 16
#: Decompressed bytes one read of a gzip stream asks for (see _fill).
_GZIP_SLICE = 1 << 16
#: Bytes read at a time by blocks_before.
_SCAN_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class NotGzip(NotAZeekLog):
    """A file named .gz that is not gzip data."""


@dataclass(frozen=True)
class LogSource:
    """A readable conn log: where it is, its format and its identity."""

    path: Path
    kind: str
    source_id: str
    compressed: bool
    meta_prefix: bytes = b"#"


def open_stream(path: Path) -> BinaryIO:
    """Open `path` for reading uncompressed bytes (gzip by magic number)."""
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    if magic == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if path.name.endswith(".gz"):
        f.close()
        raise NotGzip(f"{path} is named .gz but is not gzip data")
    return f


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _read_head(path: Path) -> bytes:
    """The first bytes of the uncompressed content (b"" for a gzip still being written)."""
    parts: list[bytes] = []
    size = 0
    with open_stream(path) as stream:
        try:
            while size < _IDENTIFY_BYTES:
                part = stream.read(64 << 10)
                if not part:
                    break
                parts.append(part)
                size += len(part)
        except EOFError:
            pass  # a gzip still being written: what it has so far
        except (gzip.BadGzipFile, zlib.error) as err:
            raise NotGzip(f"{path}: corrupt gzip data ({err})") from None
    return b"".join(parts)


def identify(path: Path) -> LogSource | None:
    """Return the source `path` holds, or None if it has no complete data line yet.

    Raises NotAZeekLog for a file that is no Zeek log (or not readable as
    one) and NotAConnLog for a Zeek log of another kind (dns, http, ...).
    """
    head = _read_head(path)
    compressed = _is_gzip(path)
    stripped = head.lstrip(b"\n")
    if not stripped:
        return None
    if stripped.startswith(b"@cee: {"):
        stripped = stripped[len(b"@cee: ") :]
    if stripped[:1] == b"{":
        return _identify_json(path, stripped, compressed)
    first_line = stripped.split(b"\n", 1)[0]
    prefix_end = _separator_at(first_line)
    if prefix_end < 1 or prefix_end > 16:
        line_no = head[: len(head) - len(stripped)].count(b"\n") + 1
        raise NotAZeekLog(
            f"{path} is not a Zeek log: line {line_no} starts with neither a Zeek header ('#separator' and a space"
            " or tab, then the separator) nor a JSON object ('{')"
        )
    prefix = first_line[:prefix_end]
    builder = zeek_ascii.HeaderBuilder(meta_prefix=prefix)
    first: zeek_ascii.ZeekHeader | None = None  # the first complete header block names the log
    pos = 0
    while True:
        end = stripped.find(b"\n", pos)
        if end < 0:
            return None  # header still being written
        line = stripped[pos:end]
        if not line.startswith(prefix):
            break
        builder.feed(line)
        if first is None and builder.current.complete:
            first = builder.current
        pos = end + 1
    header = first or builder.current
    if header.path == "notice":
        if not header.complete or "note" not in header.fields or "ts" not in header.fields:
            raise NotAZeekLog(f"{path}: a Zeek notice log without ts and note fields")
        digest = hashlib.sha256(ZEEK_NOTICE.encode() + b"\0" + stripped[: end + 1]).hexdigest()[:24]
        return LogSource(path, ZEEK_NOTICE, digest, compressed, prefix)
    if header.path in IDENTITY_LOGS:
        if not header.complete or "ts" not in header.fields:
            raise NotAZeekLog(f"{path}: a Zeek {header.path} log without a complete header and a ts field")
        kind = identity_kind(header.path, json=False)
        digest = hashlib.sha256(kind.encode() + b"\0" + stripped[: end + 1]).hexdigest()[:24]
        return LogSource(path, kind, digest, compressed, prefix)
    if header.path not in (None, "conn"):
        raise NotAConnLog(
            f"{path} is a Zeek '{header.path}' log: synack reads conn, notice and {', '.join(IDENTITY_LOGS)} logs"
        )
    if not header.complete:
        raise NotAZeekLog(f"{path}: Zeek header without matching #fields and #types")
    missing = missing_required(header.fields)
    if missing:
        raise NotAConnLog(f"{path} is not a conn log (no {', '.join(missing)} field)")
    digest = hashlib.sha256(ZEEK_ASCII.encode() + b"\0" + stripped[: end + 1]).hexdigest()[:24]
    return LogSource(path, ZEEK_ASCII, digest, compressed, prefix)


def _separator_at(line: bytes) -> int:
    """Where `separator` begins in a Zeek header's first line (after the meta
    prefix, followed by a space or, as zeek-cut accepts, a tab); -1 if not."""
    for gap in (b" ", b"\t"):
        found = line.find(b"separator" + gap)
        if found >= 0:
            return found
    return -1


def _identify_json(path: Path, head: bytes, compressed: bool) -> LogSource | None:
    end = head.find(b"\n")
    if end < 0:
        return _identify_past_long_line(path, compressed) if len(head) >= _IDENTIFY_BYTES else None
    line = head[:end]
    try:
        # Invalid UTF-8 in a value does not make the log unreadable (it is replaced when read).
        record = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        raise NotAZeekLog(f"{path} starts with a line that is not valid JSON") from None
    if not isinstance(record, dict):
        raise NotAZeekLog(f"{path} is JSON but not one object per line")
    if "event_type" in record:
        digest = hashlib.sha256(SURICATA_EVE.encode() + b"\0" + line).hexdigest()[:24]
        return LogSource(path, SURICATA_EVE, digest, compressed)
    if "note" in record and "msg" in record:
        digest = hashlib.sha256(ZEEK_NOTICE_JSON.encode() + b"\0" + line).hexdigest()[:24]
        return LogSource(path, ZEEK_NOTICE_JSON, digest, compressed)
    log = json_identity_log(record)
    if log is not None and "ts" in record and "conn_state" not in record:
        kind = identity_kind(log, json=True)
        digest = hashlib.sha256(kind.encode() + b"\0" + line).hexdigest()[:24]
        return LogSource(path, kind, digest, compressed)
    if "conn_state" not in record and "history" not in record and "orig_pkts" not in record:
        raise NotAConnLog(f"{path} is a JSON log without conn.log fields (conn_state, history, orig_pkts)")
    missing = missing_required([k for k in record if k != "ts"] + ["ts"])
    if missing:
        raise NotAConnLog(f"{path} is not a conn log (no {', '.join(missing)} field)")
    digest = hashlib.sha256(ZEEK_JSON.encode() + b"\0" + line).hexdigest()[:24]
    return LogSource(path, ZEEK_JSON, digest, compressed)


def _identify_past_long_line(path: Path, compressed: bool) -> LogSource | None:
    """A JSON log whose first line is longer than the identification window:
    its kind from the first line after it, its identity a digest of that
    long line (hashed as it streams by, never held); None while no line
    after it is complete."""
    digest = hashlib.sha256()
    with open_stream(path) as stream:
        try:
            while True:
                part = stream.read(64 << 10)
                if not part:
                    return None  # the long line is still being written
                cut = part.find(b"\n")
                if cut >= 0:
                    digest.update(part[: cut + 1])
                    rest = part[cut + 1 :] + stream.read(_IDENTIFY_BYTES)
                    break
                digest.update(part)
        except EOFError:
            return None
    following = rest.lstrip(b"\n")
    if following.find(b"\n") < 0:
        return None
    source = _identify_json(path, following, compressed)
    if source is None:
        return None
    return LogSource(path, source.kind, hashlib.sha256(source.kind.encode() + b"\0" + digest.digest()).hexdigest()[:24],
                     compressed, source.meta_prefix)  # fmt: skip


def identity_twin(source: LogSource) -> LogSource | None:
    """The identity events of a Suricata EVE source as a source of their own
    (its own offsets: ingest.suricata_identity); None for other kinds."""
    if source.kind != SURICATA_EVE:
        return None
    digest = hashlib.sha256(SURICATA_EVE_IDENTITY.encode() + b"\0" + source.source_id.encode()).hexdigest()[:24]
    return LogSource(source.path, SURICATA_EVE_IDENTITY, digest, source.compressed)


@dataclass
class Span:
    """Lines [line_start, line_end) at bytes [byte_start, byte_end) of a
    source; `header` is the header block in force after them (what the
    ledger stores to resume), `closed` whether the last meta line was
    `#close`."""

    byte_start: int
    byte_end: int
    line_start: int
    line_end: int
    header: bytes
    closed: bool
    blocks: tuple[BlockMark, ...] = ()  # the header blocks read from or ended (ingest.log_blocks)
    tail: tuple[str, int] = ("", 0)  # the (id, start) of the header block in force after them


@dataclass
class Chunk(Span):
    """The normalized records of a span, and its quarantined lines."""

    table: pa.Table | None = None
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass
class RawBlock(Span):
    """Complete lines read from a source, split but not yet parsed:
    `segments` are ASCII data runs with their header; for JSON, `data`
    holds the lines."""

    segments: list[zeek_ascii.Segment] = field(default_factory=list)
    data: bytes | memoryview = b""
    oversize: list[Quarantined] = field(default_factory=list)  # lines too long to read (MAX_LINE_BYTES)


@dataclass
class ReadState:
    """Where reading a source stopped; filled as blocks are produced."""

    partial_line: bool = False
    truncated_gzip: bool = False
    at_eof: bool = False


def read_blocks(
    source: LogSource,
    *,
    byte_start: int = 0,
    line_start: int = 1,
    header: bytes = b"",
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    state: ReadState | None = None,
    finished: bool | None = None,
    known: KnownBlocks | None = None,
    tail: tuple[str, int] = ("", 0),
    max_line: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[RawBlock]:
    """Yield blocks of complete lines of `source`, starting after the
    `byte_start` bytes (and `line_start - 1` lines) already committed.

    `header` is the ASCII header block in force at `byte_start` (from the
    ledger). Only complete lines are consumed: a partly written last line
    is left for a later read and reported in `state.partial_line`, unless
    the file is finished: a gzip stream that ended whole, or (`finished`
    None) a file nobody wrote to for FINISHED_AFTER_SECONDS (see
    is_finished). Then its unterminated last line is the file's last
    record, read as if a newline ended it (offsets count the file's bytes).

    With `known` (the ledger's header blocks) an ASCII log's data lines of
    blocks already read are dropped and each block is marked (see
    ingest.log_blocks); `tail` is the (id, start) of the block in force at
    `byte_start`. A line longer than `max_line` bytes is set aside by
    reference, never held whole.
    """
    state = state if state is not None else ReadState()
    json_lines = is_json_kind(source.kind)
    tracker = None if json_lines or known is None else BlockTracker(source.kind, known, tail)
    builder = zeek_ascii.HeaderBuilder(meta_prefix=source.meta_prefix)
    for line in header.splitlines():
        builder.feed(line)
    offset, line_no = byte_start, line_start
    with open_stream(source.path) as stream:
        _skip(stream, byte_start, source)
        # A plain file's buffer is no larger than what it holds (a small
        # log costs no 16 MB buffer to zero): a file that grew meanwhile
        # fills it and is read on in the next pass of the loop.
        plain = not isinstance(stream, gzip.GzipFile)
        left = os.fstat(stream.fileno()).st_size - byte_start if plain else _gzip_size_hint(source.path) - byte_start
        pending = b""
        while True:
            # One buffer per block, filled in place: the partial line left
            # over from the previous read goes first, no block is copied.
            # A gzip stream's buffer follows its trailer's size while it
            # lasts (an hourly archive of a quiet sensor costs no 16 MB).
            size = min(chunk_bytes, max(left + 1, _SMALL_BUFFER))
            buf = bytearray(len(pending) + size)
            buf[: len(pending)] = pending
            filled = len(pending) + _fill(stream, memoryview(buf)[len(pending) :], state)
            if not plain and filled == len(buf) and left < size:
                left = 1 << 62  # more than its trailer said (appended members): whole chunks from here
            virtual = 0
            if 0 < filled < len(buf) and buf[filled - 1] != 0x0A and _whole(source, state, finished):
                buf[filled] = 0x0A  # the finished file's last line, ended here (not in the file: no offset)
                filled, virtual = filled + 1, 1
            if (
                filled == len(pending) and not virtual and b"\n" not in pending
            ):  # (after a skipped line it may hold lines)
                state.at_eof = not state.truncated_gzip
                state.partial_line = bool(pending)
                return
            cut = buf.rfind(b"\n", 0, filled)
            if cut < 0 and filled > max_line:
                # A line longer than any record: skipped as it streams by, never held whole.
                length, pending = _skip_line(stream, filled, state, lambda: _whole(source, state, finished))
                if length is None:
                    state.partial_line = True  # not finished: the next run skips it again
                    return
                raw = RawBlock(offset, offset + length, line_no, line_no + 1, b"", False)
                raw.oversize = [_oversize(source, line_no, offset, length, max_line)]
                raw.tail = tracker.tail(builder.blocks) if tracker is not None else ("", 0)
                left -= length
                offset, line_no = raw.byte_end, raw.line_end
                yield raw
                continue
            if cut < 0:
                pending = bytes(buf[:filled])
                continue
            pending = bytes(buf[cut + 1 : filled])
            left -= cut + 1
            ends = np.flatnonzero(np.frombuffer(buf, np.uint8, cut + 1) == 0x0A)
            lines = len(ends)
            raw = RawBlock(offset, offset + cut + 1 - virtual, line_no, line_no + lines, b"", False)
            long = np.flatnonzero(np.diff(ends, prepend=-1) - 1 > max_line)
            if len(long):  # lines too long to be records: set aside by reference, emptied for the parsers
                raw.oversize, buf = _emptied(source, buf, ends, long, line_no, offset, max_line)
                cut = len(buf) - 1
            block = memoryview(buf)[: cut + 1]
            if json_lines:
                raw.data = block
            else:
                raw.segments = zeek_ascii.split_block(buf, builder, line_no, end=cut + 1)
                raw.header, raw.closed = builder.current.raw, builder.closed
                if tracker is not None:
                    raw.segments, raw.blocks = tracker.filter(raw.segments, offset, raw.byte_end, builder.blocks,
                                                              builder.closed, builder.begun)  # fmt: skip
                    raw.tail = tracker.tail(builder.blocks)
            offset, line_no = raw.byte_end, raw.line_end
            yield raw


#: The longest line read as a record unless a run says otherwise (ingest.value_limits).
MAX_LINE_BYTES = DEFAULT_MAX_LINE_BYTES


def _oversize(source: LogSource, line_no: int, offset: int, length: int, limit: int) -> Quarantined:
    """The quarantine entry of a line too long to keep: a reference to it, not its bytes."""
    return Quarantined(line_no, f"line of {length:,} bytes is longer than {limit:,}",
                       f"{source.path.name} bytes {offset:,} to {offset + length:,} (not kept)".encode())  # fmt: skip


def _emptied(source: LogSource, buf: bytearray, ends: np.ndarray, long: np.ndarray, line_no: int,
             offset: int, limit: int) -> tuple[list[Quarantined], bytearray]:  # fmt: skip
    """(the entries of the lines `long` of a block, the block with those
    lines left empty): line numbers stay, the parsers skip empty lines."""
    starts = np.r_[0, ends[:-1] + 1]
    kept, entries, at = bytearray(), [], 0
    for i in long.tolist():
        kept += buf[at : int(starts[i])]
        entries.append(_oversize(source, line_no + i, offset + int(starts[i]), int(ends[i] - starts[i] + 1), limit))
        at = int(ends[i])  # keep its newline
    kept += buf[at : int(ends[-1]) + 1]
    return entries, kept


def _skip_line(stream: BinaryIO, held: int, state: ReadState,
               finished: Callable[[], bool]) -> tuple[int | None, bytes]:  # fmt: skip
    """Read past the rest of a line of which `held` bytes were read (none
    kept); return (its length with its newline, the bytes after it), or
    (None, b"") when the stream ends first and the file is not finished
    (a finished file's unterminated last line ends where it ends)."""
    length = held
    slab = bytearray(_GZIP_SLICE)
    while True:
        got = _fill(stream, memoryview(slab), state)
        if not got:
            return (length, b"") if finished() and not state.truncated_gzip else (None, b"")
        cut = slab.find(b"\n", 0, got)
        if cut >= 0:
            return length + cut + 1, bytes(slab[cut + 1 : got])
        length += got


#: A plain file not modified for this long is finished: its unterminated
#: last line is read as its last record (a sensor's writer flushes whole
#: lines within seconds; a file written by hand or cut by a dataset that
#: ends without a newline would otherwise hold its last record forever).
FINISHED_AFTER_SECONDS = 300.0


def is_finished(path: Path) -> bool:
    """True when `path` was last modified FINISHED_AFTER_SECONDS ago or more (False if it is gone)."""
    try:
        return time.time() - path.stat().st_mtime >= FINISHED_AFTER_SECONDS
    except OSError:
        return False


def _whole(source: LogSource, state: ReadState, finished: bool | None) -> bool:
    """Whether a source that ended without a newline is finished (see read_blocks)."""
    if source.compressed and not state.truncated_gzip:
        return True
    return finished if finished is not None else is_finished(source.path)


def _fill(stream: BinaryIO, target: memoryview, state: ReadState) -> int:
    """Read into `target` until it is full or the stream ends; return the count."""
    total = 0
    # A gzip stream is read in slices: a read that meets the end of a
    # truncated archive raises and loses what it decompressed, so only the
    # last slice is lost, not the whole buffer.
    step = _GZIP_SLICE if isinstance(stream, gzip.GzipFile) else len(target)
    while total < len(target):
        try:
            got = stream.readinto(target[total : total + step])  # type: ignore[attr-defined]
        except EOFError:
            state.truncated_gzip = True
            return total
        except (gzip.BadGzipFile, zlib.error) as err:
            raise NotGzip(f"corrupt gzip data ({err})") from None
        if not got:
            break
        total += got
    return total


def parse_block(source: LogSource, raw: RawBlock, sensor: str | None, limits: ValueLimits | None = None) -> Chunk:
    """Parse and normalize one block (pure: safe on any thread); `limits`
    bound the record times (default: one day past the current clock)."""
    span = {f.name: getattr(raw, f.name) for f in fields(Span)}
    if source.kind == SURICATA_EVE_IDENTITY:
        facts = suricata_identity.read_identity(raw.data, raw.line_start, sensor, limits)
        quarantined = sorted([*raw.oversize, *facts.quarantined], key=lambda q: q.line)
        return Chunk(**span, table=suricata_identity.identity_table(facts), quarantined=quarantined)
    if source.kind == ZEEK_JSON:
        parsed = zeek_json.read_rows(raw.data, raw.line_start, limits, conn=True)
    elif source.kind == SURICATA_EVE:
        parsed = suricata_eve.read_rows(raw.data, raw.line_start, limits)
    elif is_json_kind(source.kind):  # a notice or identity log
        parsed = zeek_json.read_rows(raw.data, raw.line_start, limits)
    else:
        parsed = zeek_ascii.read_segments(raw.segments, limits, conn=source.kind == ZEEK_ASCII)
    if source.kind in IDENTITY_KINDS:
        log = IDENTITY_KINDS[source.kind]
        # One reduction for the chunk: its facts, seen once each, with when and how often.
        normalized = (
            [merged_facts([normalize_identity(t, log, sensor) for t in parsed.tables])] if parsed.tables else []
        )
    else:
        tidy = normalize_notices if source.kind in NOTICE_KINDS else normalize
        normalized = [tidy(t, sensor) for t in parsed.tables]
    table = concat_tables(normalized) if normalized else None
    quarantined = sorted([*raw.oversize, *parsed.quarantined], key=lambda q: q.line) if raw.oversize else (
        parsed.quarantined)  # fmt: skip
    return Chunk(**span, table=table, quarantined=quarantined)


def read_chunks(source: LogSource, *, sensor: str | None = None, **kwargs: Any) -> Iterator[Chunk]:
    """Yield parsed chunks of `source` in order, on this thread (see read_blocks)."""
    for raw in read_blocks(source, **kwargs):
        yield parse_block(source, raw, sensor)


def gzip_last_member_size(path: Path) -> tuple[int, int]:
    """(the uncompressed size of the last member of the gzip file `path`
    modulo 4 GiB, as its trailer says (ISIZE); the file's size), (0, size)
    for a file too short to have a trailer."""
    with open(path, "rb") as f:
        compressed = f.seek(0, os.SEEK_END)
        if compressed < 18:
            return 0, compressed
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little"), compressed


def _gzip_size_hint(path: Path) -> int:
    """About how many bytes the gzip file `path` holds uncompressed: its
    last member's size, at least twice its compressed size (a wrapped or
    appended-to archive is then read in whole chunks, not in small buffers)."""
    isize, compressed = gzip_last_member_size(path)
    return max(isize, 2 * compressed) if compressed >= 18 else 0


def _skip(stream: BinaryIO, count: int, source: LogSource) -> None:
    if count == 0:
        return
    if not source.compressed:
        stream.seek(count)
        return
    remaining = count
    while remaining:
        try:
            got = len(stream.read(min(remaining, 8 << 20)))
        except EOFError:
            got = 0
        if got == 0:
            raise NotAZeekLog(f"{source.path} is shorter than the {count} bytes already ingested from it")
        remaining -= got


def block_at(source: LogSource, offset: int) -> str:
    """The id of the header block that begins at byte `offset` of an ASCII
    `source` (ingest.log_blocks), or "" when none begins there with a
    complete data line (the stream is shorter, or holds something else)."""
    try:
        with open_stream(source.path) as stream:
            _skip(stream, offset, source)
            head = stream.read(_IDENTIFY_BYTES)
    except (NotAZeekLog, EOFError, OSError, zlib.error):
        return ""
    if not head.startswith(source.meta_prefix + b"separator"):
        return ""
    return _header_id(source, head, 0) or ""


def blocks_before(source: LogSource, end: int) -> list[str] | None:
    """The ids of the header blocks that begin before byte `end` of an
    ASCII `source`, in stream order (ingest.log_blocks), or None when they
    cannot all be named (the stream is shorter or unreadable, a block's
    header runs past `end` or for more than _IDENTIFY_BYTES). One pass: the
    stream is searched for block starts, only their headers are parsed."""
    sep = source.meta_prefix + b"separator"
    marker = b"\n" + sep
    ids: list[str] = []
    buf, line_start, pending, read = b"", True, False, 0  # line_start: buf[0] begins a line

    def next_start(after: int) -> int:
        if after == 0 and line_start and buf.startswith(sep):
            return 0
        found = buf.find(marker, max(after - 1, 0))
        return -1 if found < 0 else found + 1

    try:
        with open_stream(source.path) as stream:
            while read < end:
                piece = stream.read(min(_SCAN_BYTES, end - read))
                if not piece:
                    return None
                read += len(piece)
                buf += piece
                start = next_start(0)
                while start >= 0 and (named := _header_id(source, buf, start)) is not None:
                    ids.append(named)
                    start = next_start(start + 1)
                pending = start >= 0  # a block whose header is not whole yet: keep it all
                keep = start if pending else max(0, len(buf) - len(sep))
                if len(buf) - keep > _IDENTIFY_BYTES:
                    return None
                line_start = line_start if keep == 0 else buf[keep - 1] == ord("\n")
                buf = buf[keep:]
    except (NotAZeekLog, EOFError, OSError, zlib.error):
        return None
    return None if pending else ids


def _header_id(source: LogSource, buf: bytes, at: int) -> str | None:
    """The id of the block whose header begins at `at` in `buf`, or None
    when its first data line is not in `buf`."""
    builder = zeek_ascii.HeaderBuilder(meta_prefix=source.meta_prefix)
    pos = at
    while (cut := buf.find(b"\n", pos)) >= 0:
        if not buf.startswith(source.meta_prefix, pos):
            return block_id(source.kind, builder.current.raw, buf[pos : cut + 1])
        builder.feed(buf[pos:cut])
        pos = cut + 1
    return None


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """One table of `tables` (column types promoted). An extra column whose
    types cannot be promoted (a JSON field that is a list on one line and
    a number on another) becomes JSON text in every table."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        types: dict[str, set[pa.DataType]] = {}
        for t in tables:
            for f in t.schema:
                types.setdefault(f.name, set()).add(f.type)
        mixed = {name for name, kinds in types.items() if len(kinds) > 1 and name not in CORE_SCHEMA.names}
        tables = [
            pa.table(
                [zeek_json.as_json_text(t[n].combine_chunks()) if n in mixed else t[n] for n in t.column_names],
                names=t.column_names,
            )
            for t in tables
        ]
        return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
