"""Exact distinct counts of (key, value) pairs too many to hold: partitions on disk.

`clients` over a year counts, per client port, its distinct servers: the
(client port, server) pairs of the year, 21 M on a network of 350,000
records a day, which held at once (and made distinct by one sort) took
the process to 1.7 GB. A PairSpill takes packed pairs (a 64-bit key code
whose high 32 bits are the client's number, and a 32-bit value) in
batches, and writes each to one of PARTS files on disk by a hash of the
client: a key lies in one partition, so each partition is made distinct
and counted alone, and memory follows a partition, not the pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.aggregates import sorted_distinct
from synack.inventory.answer_stream import temporary_directory, temporary_writes

#: Partitions of the pairs (2**PART_BITS): each holds about 1/PARTS of them.
PART_BITS = 4
PARTS = 1 << PART_BITS
#: Pairs partitioned at once: bounds the temporary arrays of a write.
WRITE_ROWS = 1 << 20
_WHAT = "client and server pairs counted on disk"
_SCHEMA = pa.schema([("code", pa.uint64()), ("value", pa.uint32())])


def distinct_counts(pairs: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct key codes of `pairs` (code, value), how many distinct
    values each has): keys numbered densely by hashing, each pair one
    64-bit number, made distinct by one sort."""
    code = pairs.column("code").combine_chunks()
    codes = pc.unique(code)
    ids = pc.index_in(code, value_set=codes).to_numpy()
    packed = (ids.astype(np.uint64) << np.uint64(32)) | pairs.column("value").to_numpy().astype(np.uint64)
    distinct = sorted_distinct(packed)
    counts = np.bincount((distinct >> np.uint64(32)).astype(np.int64), minlength=len(codes))
    return codes.to_numpy(), counts


class PairSpill:
    """Pairs written to PARTS partition files by a hash of the client (see
    the module), under a temporary directory removed by `close`."""

    def __init__(self) -> None:
        self._temporary = temporary_directory("synack-pairs-", _WHAT)
        self.directory = Path(self._temporary.name)
        with temporary_writes(_WHAT):
            self.writers = [pa.ipc.new_stream(str(self._part(i)), _SCHEMA) for i in range(PARTS)]

    def _part(self, i: int) -> Path:
        return self.directory / f"{i}.arrows"

    def write(self, pairs: pa.Table) -> None:
        """Add the pairs of a (code, value) table, WRITE_ROWS at a time."""
        for start in range(0, len(pairs), WRITE_ROWS):
            some = pairs.slice(start, WRITE_ROWS)
            code = some.column("code").combine_chunks().to_numpy()
            value = some.column("value").combine_chunks().to_numpy()
            hashed = (code >> np.uint64(32)).astype(np.uint32)
            hashed *= np.uint32(0x9E3779B1)  # Fibonacci hashing: the top bits pick the partition
            part = (hashed >> np.uint32(32 - PART_BITS)).astype(np.uint8)
            order = np.argsort(part, kind="stable")  # a radix sort of bytes
            batch = pa.record_batch([pa.array(code[order]), pa.array(value[order], pa.uint32())], schema=_SCHEMA)
            ends = np.cumsum(np.bincount(part, minlength=PARTS))
            with temporary_writes(_WHAT):
                for i, (lo, hi) in enumerate(zip(np.r_[0, ends[:-1]], ends)):
                    if hi > lo:
                        self.writers[i].write_batch(batch.slice(int(lo), int(hi - lo)))

    def counts(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """distinct_counts of each partition in turn (their keys never meet);
        the files are closed first and removed by `close`."""
        for writer in self.writers:
            writer.close()
        self.writers = []
        for i in range(PARTS):
            with pa.OSFile(str(self._part(i))) as source:
                pairs = pa.ipc.open_stream(source).read_all()
            if len(pairs):
                yield distinct_counts(pairs)
            del pairs

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers = []
        self._temporary.cleanup()
