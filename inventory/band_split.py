"""Client rows split into address bands in one pass over the files.

A range whose client rows are answered a band of client addresses at a
time (inventory.address_bands) would read every client file once per band:
those files are sorted by server (the order their writes and the servers'
questions prune by), so a band's filter on client_v4 prunes no row group,
and a day of 2 M clients in 21 bands decoded each file 42 times (the range
and the sightings). A BandSplit reads each file once, when a band first
asks for it: row group by row group, verified as the Snapshot verifies
it, each row put in the band its client_v4 falls in (the last band holds
every other address, as address_bands makes it), into a temporary Arrow
file (lz4) of one batch per row group and band. `reading(band)` gives a
Snapshot whose client reads filtered on client_v4 are answered from that
band's batches, filtered and cut as the read asks; every other read goes
to the store. The rows of a band are the rows the filter would keep from
the file, in the file's order, so every answer is unchanged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from synack.ingest.snapshot import CLIENTS, FileStamp, Partial, Rollup, Snapshot
from synack.inventory.address_bands import Band
from synack.inventory.answer_stream import temporary_directory, temporary_writes

#: The column client bands are cut by.
COLUMN = "client_v4"
#: Rows of a file split at once (its row groups gathered): one batch per band each.
SPLIT_ROWS = 1 << 18
_WHAT = "client rows split by band"


@dataclass
class BandSplit:
    """The client files of one snapshot split into bands (see the module),
    under a temporary directory removed by `close` (or at exit of `with`)."""

    snapshot: Snapshot
    starts: np.ndarray  # each band's lowest IPv4 number but the first's (searchsorted gives a row's band)
    directory: tempfile.TemporaryDirectory[str] = field(
        default_factory=lambda: temporary_directory("synack-bands-", _WHAT)
    )
    pieces: dict[str, tuple[Path, int]] = field(default_factory=dict)  # file -> (its split, its row groups)

    @classmethod
    def of(cls, snapshot: Snapshot, bands: list[Band]) -> BandSplit:
        """A split of `snapshot`'s client files into `bands` (address_bands' bands, in address order)."""
        starts = [min(int(n.network_address) for n in band if n.version == 4) for band in bands[1:] if band]
        return cls(snapshot, np.array(starts, dtype=np.int64))

    @property
    def bands(self) -> int:
        return len(self.starts) + 1

    def reading(self, band: int) -> Snapshot:
        """A snapshot like this split's whose client reads on client_v4 come from band number `band`."""
        return BandSnapshot(self.snapshot.state, self.snapshot.cache, split=self, band=band)

    def close(self) -> None:
        self.directory.cleanup()

    def __enter__(self) -> BandSplit:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def serves(self, kind: str, options: dict[str, Any]) -> bool:
        """Whether a read of `kind` with `options` is a band's (filtered on
        client_v4; a `narrow` test is then not needed: the band's rows are few)."""
        filters = options.get("filters")
        return kind == CLIENTS and filters is not None and COLUMN in str(filters)

    def read(self, rel: str, stamp: FileStamp | None, rows: int | None, band: int, options: dict[str, Any]) -> pa.Table:
        """The rows of `rel` that a read with `options` keeps, from band number `band`'s batches."""
        schema = options.get("schema")
        if rel not in self.pieces:
            self._split(rel, stamp, rows, schema)
        path, groups = self.pieces[rel]
        if not groups:  # a file without row groups: read as it is
            return self.snapshot.read(rel, stamp, rows, **options)
        with pa.OSFile(str(path)) as source:
            reader = pa.ipc.open_file(source)
            table = pa.Table.from_batches([reader.get_batch(g * self.bands + band) for g in range(groups)],
                                          schema=reader.schema)  # fmt: skip
        table = table.filter(options["filters"])
        columns = options.get("columns")
        return table.select(columns) if columns is not None else table

    def _split(self, rel: str, stamp: FileStamp | None, rows: int | None, schema: pa.Schema | None) -> None:
        """Split the file `rel` into a temporary file of one batch per band
        for every SPLIT_ROWS rows (its row groups gathered: a band reads a
        few batches of a file, not one per row group)."""
        path = Path(self.directory.name) / f"{len(self.pieces)}.arrow"
        groups = 0
        writer: pa.ipc.RecordBatchFileWriter | None = None
        gathered: list[pa.Table] = []

        def flush() -> None:
            nonlocal writer, groups
            table = pa.concat_tables(gathered)
            gathered.clear()
            if writer is None:
                writer = pa.ipc.new_file(str(path), table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4"))
            band = np.searchsorted(self.starts, table.column(COLUMN).to_numpy(), side="right")
            if self.bands <= 1 << 16:
                band = band.astype(np.uint16)  # numpy's stable sort of 16-bit numbers is a radix sort
            order = np.argsort(band, kind="stable")
            batch = table.take(pa.array(order)).combine_chunks().to_batches()
            whole = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=table.schema)
            ends = np.cumsum(np.bincount(band, minlength=self.bands))
            for lo, hi in zip(np.r_[0, ends[:-1]], ends):
                writer.write_batch(whole.slice(int(lo), int(hi - lo)))
            groups += 1

        with temporary_writes(_WHAT):
            try:
                held = 0
                for table in self.snapshot.row_groups(rel, stamp, rows, schema):
                    gathered.append(table)
                    held += len(table)
                    if held >= SPLIT_ROWS:
                        flush()
                        held = 0
                if gathered:
                    flush()
            finally:
                if writer is not None:
                    writer.close()
        self.pieces[rel] = (path, groups)


@dataclass(frozen=True)
class BandSnapshot(Snapshot):
    """A Snapshot whose client reads on client_v4 come from one band of a BandSplit."""

    split: BandSplit | None = None
    band: int = 0

    def read_partial(self, kind: str, partial: Partial, **options: Any) -> pa.Table:
        if self.split is None or not self.split.serves(kind, options):
            return super().read_partial(kind, partial, **options)
        return self.split.read(
            self.partial_file(kind, partial), partial.stamp(kind), partial.kind_rows(kind), self.band, options
        )

    def read_rollup(self, kind: str, rollup: Rollup, **options: Any) -> pa.Table:
        if self.split is None or not self.split.serves(kind, options):
            return super().read_rollup(kind, rollup, **options)
        return self.split.read(
            self.rollup_file(kind, rollup), rollup.stamp(kind), rollup.kind_rows(kind), self.band, options
        )
