"""The ledger's rows, decoded into dataclasses in one place (ingest.ledger)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from synack.ingest.partials import Partial
from synack.ingest.rollups import Rollup
from synack.ingest.store_files import FileStamp


@dataclass(frozen=True)
class SourceState:
    """What the ledger says of one source."""

    source_id: str
    committed_bytes: int
    next_line: int
    chunks: int
    rows: int
    quarantined: int
    header: bytes
    complete: bool
    tail_block: str = ""  # the header block in force at committed_bytes ("": not known)
    tail_start: int = 0  # where that block begins


@dataclass(frozen=True)
class FileRow:
    """One committed record, quarantine or notice file (`path` relative to the store's root)."""

    path: str
    source_id: str
    chunk: int
    day: str | None  # None: a quarantine or notice file
    rows: int
    stamp: FileStamp | None = None  # None: written before stamps
    pending: bool = False  # committed, maybe not yet moved into place


@dataclass(frozen=True)
class DaySensor:
    """Records and the newest record (µs) of one sensor on one day ("" for no sensor)."""

    day: str
    sensor: str
    rows: int
    newest: int


@dataclass(frozen=True)
class SourcesSummary:
    """How many sources were ingested, the lines they quarantined, and the last ingest (UTC ISO text)."""

    sources: int = 0
    quarantined_lines: int = 0
    last_ingest: str | None = None


@dataclass(frozen=True)
class ChunkSpan:
    """What a committed chunk covered of its source: lines [line_start,
    line_end) at bytes [byte_start, byte_end), its records and quarantined lines."""

    chunk: int
    byte_start: int
    byte_end: int
    line_start: int
    line_end: int
    rows: int
    quarantined: int


@dataclass(frozen=True)
class BlockMark:
    """How far one header block of a Zeek ASCII stream was read
    (ingest.log_blocks): its id, where it began in the stream the mark was
    made in, its bytes committed (from its first header line), whether it
    ended (`#close`, or another block began after it)."""

    block_id: str
    start: int
    bytes: int
    ended: bool


@dataclass(frozen=True)
class ChunkRow:
    """A chunk to commit: what it covers of its source."""

    source_id: str
    kind: str
    path: str
    span: ChunkSpan
    header: bytes
    complete: bool
    blocks: tuple[BlockMark, ...] = ()  # the header blocks it read from or ended
    tail: tuple[str, int] = ("", 0)  # the (id, start) of the block in force at its end ("": not named yet)


@dataclass(frozen=True)
class SourceRow:
    """A source's whole row, as a ledger adoption (ingest.store_adopt) reads and rewrites it."""

    source_id: str
    kind: str
    first_path: str
    last_path: str
    committed_bytes: int
    next_line: int
    chunks: int  # the next chunk's number (one more than the newest chunk's)
    rows: int
    quarantined: int
    header: bytes
    complete: bool
    first_ingest: str
    last_ingest: str
    tail_block: str = ""
    tail_start: int = 0


SOURCE_COLUMNS = ("source_id, kind, first_path, last_path, committed_bytes, next_line, chunks, rows, quarantined, "
                  "header, complete, first_ingest, last_ingest, tail_block, tail_start")  # fmt: skip


def decode_source(r: sqlite3.Row) -> SourceRow:
    return SourceRow(r["source_id"], r["kind"], r["first_path"], r["last_path"], r["committed_bytes"],
                     r["next_line"], r["chunks"], r["rows"], r["quarantined"], bytes(r["header"]),
                     bool(r["complete"]), r["first_ingest"], r["last_ingest"], r["tail_block"],
                     r["tail_start"])  # fmt: skip


def stamp_of(size: int | None, crc: int | None) -> FileStamp | None:
    return None if size is None or crc is None else FileStamp(size, crc)


def stamp_columns(stamp: FileStamp | None) -> tuple[int | None, int | None]:
    return (None, None) if stamp is None else (stamp.size, stamp.crc)


PARTIAL_COLUMNS = (
    "name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, server_rows, client_rows, records, level, fine, "
    "coarse, server_size, server_crc, client_size, client_crc, pending"
)


def decode_partial(r: sqlite3.Row) -> Partial:
    return Partial(
        r["name"], r["day"], r["source_id"], r["chunk_lo"], r["chunk_hi"], r["t_min"], r["t_max"],
        r["server_rows"], r["client_rows"], r["records"], level=r["level"], fine=bool(r["fine"]),
        coarse=int(r["coarse"]), server_stamp=stamp_of(r["server_size"], r["server_crc"]),
        client_stamp=stamp_of(r["client_size"], r["client_crc"]),
    )  # fmt: skip


ROLLUP_COLUMNS = "month, name, days, server_rows, client_rows, server_size, server_crc, client_size, client_crc"


def decode_rollup(r: sqlite3.Row) -> Rollup:
    return Rollup(r["month"], r["name"], json.loads(r["days"]), r["server_rows"], r["client_rows"],
                  stamp_of(r["server_size"], r["server_crc"]), stamp_of(r["client_size"], r["client_crc"]))  # fmt: skip


FILE_COLUMNS = "path, source_id, chunk, day, rows, size, crc, pending"


def decode_file(r: sqlite3.Row) -> FileRow:
    return FileRow(r["path"], r["source_id"], r["chunk"], r["day"], r["rows"], stamp_of(r["size"], r["crc"]),
                   bool(r["pending"]))  # fmt: skip
