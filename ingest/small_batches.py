"""Many small logs committed together: hourly archives of a quiet sensor, a year's backfill.

A conn log costs a fixed ~50 ms to read on its own (hundreds of Arrow
calls to parse and aggregate a few lines, three files written, a ledger
commit), whatever it holds; a year of one-hour archives is 8,760 of them.
Small Zeek ASCII conn logs met in a row are therefore read one after the
other and committed as one *batch*: their data lines (grouped by header
layout) parsed in one pass, normalized and aggregated together, written
as one record file per day and one partial, and recorded in one ledger
transaction holding each log's own chunk (its offsets, header and blocks,
so each stays a source of its own: reading it again adds nothing), the
files it read remembered in the same transaction.

A log joins a batch only when it is new to the store, ends (a gzip stream
read whole, or a plain file nobody wrote to for FINISHED_AFTER_SECONDS),
fits in one read and shares no header block with the batch (else the
batch is committed first and the log read on its own). A batch whose
parse sets any line aside is read log by log instead, so every
quarantined line keeps its file and line number.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from synack.ingest import provenance
from synack.ingest.chunk_files import ChunkFiles, write_chunk_files
from synack.ingest.ledger import ChunkRow, ChunkSpan
from synack.ingest.log_source import (
    CLOSING_KINDS,
    ZEEK_ASCII,
    LogSource,
    RawBlock,
    ReadState,
    concat_tables,
    is_finished,
    read_blocks,
)
from synack.ingest.normalize import normalize
from synack.ingest.partials import by_day
from synack.ingest.store import CommitResult, Store
from synack.ingest.value_limits import ValueLimits
from synack.ingest.zeek_ascii import ZeekHeader, read_rows

#: A log at most this large on disk may join a batch.
SMALL_FILE_BYTES = 256 << 10
#: A batch is committed once it holds this many logs or this many bytes of lines.
BATCH_FILES = 256
BATCH_BYTES = 8 << 20


@dataclass(frozen=True)
class Member:
    """One small log of a batch: its source, its stat, the one block it holds."""

    source: LogSource
    stat: os.stat_result
    raw: RawBlock


class Batch:
    """Small logs read, waiting to be committed together (at most a chunk's bytes of lines in all)."""

    def __init__(self, chunk_bytes: int = BATCH_BYTES) -> None:
        self.members: list[Member] = []
        self.chunk_bytes = min(chunk_bytes, BATCH_BYTES)

    @property
    def full(self) -> bool:
        return len(self.members) >= BATCH_FILES or sum(m.raw.byte_end for m in self.members) >= self.chunk_bytes

    def clashes(self, member: Member) -> bool:
        """Whether `member` is a source of the batch already or shares a header block with it."""
        blocks = {b.block_id for m in self.members for b in m.raw.blocks}
        sources = {m.source.source_id for m in self.members}
        return member.source.source_id in sources or bool({b.block_id for b in member.raw.blocks} & blocks)

    def add(self, member: Member) -> None:
        self.members.append(member)

    def take(self) -> list[Member]:
        """The members, the batch emptied."""
        members, self.members = self.members, []
        return members


def small_member(store: Store, source: LogSource, stat: os.stat_result, max_line: int,
                 chunk_bytes: int) -> Member | None:  # fmt: skip
    """`source` read whole as a batch member, or None when it cannot be one
    (see the module; it must fit in one chunk of `chunk_bytes`)."""
    if source.kind != ZEEK_ASCII or stat.st_size > SMALL_FILE_BYTES:
        return None
    if store.source_state(source.source_id) is not None:
        return None
    if not source.compressed and not is_finished(source.path):
        return None
    state = ReadState()
    raws = list(read_blocks(source, state=state, known=store.known_blocks(), finished=True, max_line=max_line,
                            chunk_bytes=chunk_bytes))  # fmt: skip
    if len(raws) != 1 or not state.at_eof or state.partial_line or state.truncated_gzip or raws[0].oversize:
        return None
    return Member(source, stat, raws[0])


@dataclass(frozen=True)
class Parsed:
    """A batch parsed: its normalized records and each member's record count."""

    table: pa.Table | None
    rows: list[int]


def parse_batch(members: list[Member], sensor: str | None, limits: ValueLimits) -> Parsed | None:
    """The records of `members` parsed in one pass per header layout; None
    when any line is set aside (the members are then read one by one)."""
    layouts: dict[tuple[object, ...], list[memoryview]] = {}
    headers: dict[tuple[object, ...], ZeekHeader] = {}
    rows = []
    for member in members:
        count = 0
        for seg in member.raw.segments:
            h = seg.header
            key = (h.separator, h.set_separator, h.empty_field, h.unset_field, h.fields, h.types, h.problem)
            layouts.setdefault(key, []).append(seg.data)
            headers[key] = h
            count += _data_lines(seg.data)
        rows.append(count)
    tables = []
    for layout, parts in layouts.items():
        parsed = read_rows(b"".join(parts), headers[layout], 1, limits, conn=True)
        if parsed.quarantined:
            return None
        tables.extend(parsed.tables)
    normalized = [normalize(t, sensor) for t in tables]
    table = concat_tables(normalized) if normalized else None
    if (len(table) if table is not None else 0) != sum(rows):
        return None  # a line dropped without a reason: read one by one, where each line is accounted for
    return Parsed(table, rows)


def _data_lines(data: memoryview) -> int:
    """The non-blank lines of `data` (complete lines)."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 0x0A)
    return int(np.count_nonzero(np.diff(ends, prepend=-1) > 1))


def commit_batch(store: Store, members: list[Member], parsed: Parsed) -> CommitResult:
    """Write and commit a parsed batch (see the module); return what it added."""
    chunks = [_chunk_row(m, rows) for m, rows in zip(members, parsed.rows)]
    batch_id = "batch-" + hashlib.sha256("\0".join(c.source_id for c in chunks).encode()).hexdigest()[:18]
    owner = provenance.union((batch_id, 0), [provenance.of_chunk(c) for c in chunks])
    days = by_day(parsed.table)
    files: ChunkFiles = write_chunk_files(store.files, batch_id, members[0].source.path, 0, days, [],
                                          provenance=owner)  # fmt: skip
    seen = [(m.source.path, m.stat.st_size, m.stat.st_mtime_ns, m.source.source_id) for m in members]
    return store.commit_batch(files, batch_id, chunks, seen)


def _chunk_row(member: Member, rows: int) -> ChunkRow:
    raw, source = member.raw, member.source
    span = ChunkSpan(0, raw.byte_start, raw.byte_end, raw.line_start, raw.line_end, rows, 0)
    complete = source.compressed or (raw.closed and source.kind in CLOSING_KINDS)
    return ChunkRow(source.source_id, source.kind, str(source.path), span, raw.header, complete, raw.blocks, raw.tail)


def batchable(path: Path) -> bool:
    """Whether `path` is small enough to be worth trying as a batch member."""
    try:
        return path.stat().st_size <= SMALL_FILE_BYTES
    except OSError:
        return False
