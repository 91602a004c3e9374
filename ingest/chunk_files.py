"""A chunk's files: its records by day, their partial aggregates, its
quarantined lines and notices, written under temporary names (step 1 of a
commit, ingest.store). Needs no ledger and no lock, so a worker of a
distributed engine runs it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path, PurePath

import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.errors import StoreError
from synack.ingest.file_modes import PRIVATE
from synack.ingest.ledger import DaySensor
from synack.ingest.line_parsing import Quarantined
from synack.ingest.partials import DayRecords, Partial, sensor_counts, write_partial
from synack.ingest.provenance import Provenance, stamped
from synack.ingest.sensor_notices import NOTICES_DIR
from synack.ingest.server_identity import IDENTITY_DIR
from synack.ingest.store_files import FileStamp, StoreFS, io_error, tmp_name

CONN_DIR = "conn"
QUARANTINE_DIR = "quarantine"
PARQUET_COMPRESSION = "zstd"
#: zstd's fastest level: on conn records it writes files as small as Arrow's default level, 20% faster.
PARQUET_COMPRESSION_LEVEL = 1


@dataclass(frozen=True)
class ChunkFiles:
    """A chunk's files written under temporary names, not yet committed."""

    planned: list[tuple[PurePath, str | None, int, FileStamp]]  # final path, day (None: not records), rows, stamp
    rows: int
    quarantined: int
    newest: dt.datetime | None = None  # the latest record time in the chunk
    partials: tuple[Partial, ...] = ()
    sensors: tuple[DaySensor, ...] = ()
    notices: int = 0  # sensor notices (a notice log's chunk)
    identities: int = 0  # identity facts (an identity log's chunk, ingest.server_identity)


def write_chunk_files(
    store: StoreFS,
    source_id: str,
    path: Path,
    chunk_no: int,
    days: list[DayRecords],
    quarantined: list[Quarantined],
    notices: pa.Table | None = None,
    identities: pa.Table | None = None,
    provenance: Provenance | None = None,
) -> ChunkFiles:
    """Write a chunk's files into `store` under temporary names
    (step 1 of a commit): its records by day with their partial aggregates,
    its quarantined lines, and (a notice log's chunk) its sensor notices or
    (an identity log's) its identity facts. Each Parquet file carries the
    chunk's `provenance` (ingest.provenance).

    Needs no open Store (the ledger is not touched), so a worker process of
    a distributed engine runs it; the names are fixed by (source, chunk), so
    a retried task writes the same files again. Safe on several threads at
    once for different chunks. Raises StoreError (leaving nothing behind)
    when the store is unwritable.
    """
    planned: list[tuple[PurePath, str | None, int, FileStamp]] = []
    partials: list[Partial] = []
    root = store.root
    sensors: list[DaySensor] = []
    name = f"{source_id}-{chunk_no:06d}"
    try:
        for one in days:
            day, part = one.day, one.records
            final = root / CONN_DIR / f"date={day}" / f"{name}.parquet"
            planned.append((final, day, len(part), write_record_file(store, stamped(part, provenance),
                                                                     tmp_name(final))))  # fmt: skip
            partials.append(
                write_partial(store, name, day, source_id, (chunk_no, chunk_no), part, (one.servers, one.clients))
            )
            sensors.extend(DaySensor(*counts) for counts in sensor_counts(day, part))
        if quarantined:
            final = root / QUARANTINE_DIR / f"{name}.jsonl"
            planned.append((final, None, len(quarantined), write_quarantine(store, quarantined, path,
                                                                               tmp_name(final))))  # fmt: skip
        if notices is not None and len(notices):
            final = root / NOTICES_DIR / f"{name}.parquet"
            planned.append((final, None, len(notices), write_record_file(store, stamped(notices, provenance),
                                                                         tmp_name(final))))  # fmt: skip
        if identities is not None and len(identities):
            final = root / IDENTITY_DIR / f"{name}.parquet"
            planned.append((final, None, len(identities), write_record_file(store, stamped(identities, provenance),
                                                                            tmp_name(final))))  # fmt: skip
    except OSError as err:
        remove_temporaries(store, [f for f, *_ in planned] + [f for p in partials for f in p.paths(root)])
        raise StoreError(io_error(err, store)) from None
    newest = max((pc.max(d.records.column("ts")).as_py() for d in days), default=None)
    count = sum(len(d.records) for d in days)
    kept = len(notices) if notices is not None else 0
    facts = len(identities) if identities is not None else 0
    return ChunkFiles(planned, count, len(quarantined), newest, tuple(partials), tuple(sensors), kept, facts)


def remove_temporaries(store: StoreFS, finals: list[PurePath]) -> None:
    """Remove the temporary files of uncommitted `finals`."""
    for final in finals:
        store.remove(tmp_name(final))


#: Columns whose min/max statistics serve queries (pruning by time and port).
_STATISTICS = ["ts", "server_p", "resp_p", "orig_p"]


def write_record_file(store: StoreFS, table: pa.Table, tmp: PurePath) -> FileStamp:
    """Write records (or notices) as a Parquet file at `tmp`; return its stamp."""
    # Parquet dictionary pages only where Arrow already has a dictionary:
    # trying them on unique columns (uid, ts) costs time and saves nothing.
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    # Integers and times delta-encoded: a fifth less writing time than plain
    # pages through zstd, and slightly smaller files.
    delta = {f.name: "DELTA_BINARY_PACKED" for f in table.schema if _delta_encoded(f.type)}
    return store.write_parquet(
        table,
        tmp,
        compression=PARQUET_COMPRESSION,
        compression_level=PARQUET_COMPRESSION_LEVEL,
        row_group_size=1 << 20,
        use_dictionary=dictionary,
        column_encoding=delta,
        write_statistics=[c for c in _STATISTICS if c in table.column_names],
    )


def _delta_encoded(column: pa.DataType) -> bool:
    return pa.types.is_integer(column) or pa.types.is_timestamp(column)


def write_quarantine(store: StoreFS, entries: list[Quarantined], source_path: Path, tmp: PurePath) -> FileStamp:
    lines = []
    for q in entries:
        record = {
            "file": str(source_path),
            "line": q.line,
            "reason": q.reason,
            "text": q.text.decode("utf-8", "backslashreplace"),
        }
        lines.append(json.dumps(record, ensure_ascii=True) + "\n")
    return store.write_bytes(tmp, "".join(lines).encode("ascii"), PRIVATE)  # raw lines from the network
