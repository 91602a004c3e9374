"""Writing store files safely: temporary names, fsync, Parquet through Arrow's own stream.

Every store file is written under `tmp_name(final)` (a leading dot, so
Parquet readers skip it), fsynced, and renamed into place only after the
ledger has recorded it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def tmp_name(final: Path) -> Path:
    """The temporary name `final` is written under before it is committed."""
    return final.with_name("." + final.name + ".tmp")


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_synced(table: pa.Table, path: Path, **options: Any) -> None:
    """Write `table` to `path` with `pq.write_table(**options)` and fsync it.

    Every page carries a CRC32 checksum (Parquet's page checksum), which
    `synack check` verifies. Arrow writes through its own file stream: a
    Python file object would take the GIL for every page, stalling the
    threads that parse meanwhile.
    """
    with pa.OSFile(str(path), "wb") as sink:
        pq.write_table(table, sink, write_page_checksum=True, **options)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
