"""A report's tables held by their size: in memory when small, on disk when not.

A day on which a few hosts answer every port has millions of new server
ports; the report's CSV and JSON hold every row and its page the first
few, so a table is built from an answer's frames (Inventory.frames) into
a ReportTable: every row when there are at most KEEP_ROWS, otherwise its
first KEEP_ROWS in memory and every row in a temporary Arrow IPC file,
read back a slice at a time by the writers. The page of new server ports
collapses the ports of each host that answers every port into one row
(`Collapsing`), counted over every frame, never over the whole table at once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from synack.ingest import heap
from synack.inventory.answer_stream import detached, joined, temporary_directory, temporary_writes
from synack.inventory.export import arrow_table

#: Rows of a table held in memory; a longer table's rows are read from its file.
KEEP_ROWS = 50_000
#: Rows read back from a table's file at once.
READ_ROWS = 10_000
_WHAT = "the report's large tables"


@dataclass
class ReportTable:
    """One table of a report: `head` (every row when `rows` <= KEEP_ROWS,
    else the first KEEP_ROWS), `rows` in all, and the file holding every
    row when they are more (None otherwise)."""

    head: pd.DataFrame
    rows: int
    path: Path | None = None

    @classmethod
    def of(cls, frames: Iterable[pd.DataFrame], spill_dir: Path, name: str) -> ReportTable:
        """The table of an answer's `frames` (in order), its rows written to
        `name`.arrow under `spill_dir` once they pass KEEP_ROWS."""
        held: list[pd.DataFrame] = []  # every frame while the rows fit in memory, then the head
        rows = 0
        path = spill_dir / f"{name}.arrow"
        writer: pa.ipc.RecordBatchFileWriter | None = None
        schema: pa.Schema | None = None
        with temporary_writes(_WHAT):
            try:
                for frame in frames:
                    if writer is None:
                        held.append(frame)
                        if rows + len(frame) > KEEP_ROWS:
                            schema = arrow_table(held[0]).schema
                            writer = pa.ipc.new_file(str(path), schema)
                            for part in held:
                                writer.write_table(arrow_table(part).cast(schema))
                            held = [detached(joined(held).head(KEEP_ROWS))]
                    else:
                        writer.write_table(arrow_table(frame).cast(schema))
                    rows += len(frame)
                    del frame
                    heap.give_back()
            finally:
                if writer is not None:
                    writer.close()
        return cls(joined(held).reset_index(drop=True), rows, path if writer is not None else None)

    def frames(self) -> Iterator[pd.DataFrame]:
        """Every row of the table, READ_ROWS at a time, dtypes as `head` has them."""
        if self.path is None:
            yield self.head
            return
        with pa.OSFile(str(self.path)) as source:  # a batch read into memory, not a map whose pages stay resident
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                for at in range(0, batch.num_rows, READ_ROWS):
                    frame = batch.slice(at, READ_ROWS).to_pandas()
                    yield frame.astype({c: t for c, t in self.head.dtypes.items() if frame[c].dtype != t})


@dataclass
class Collapsing:
    """The page view of new server ports, built frame by frame (frames in
    first-seen order): the rows of each host that answers every port
    (`answers_all`, TCP) become one, the first of its rows, whose `port`
    says how many TCP ports from which one up; other rows get PORT/PROTO.
    `view(limit)` gives the first `limit` rows of that view and `total` its rows."""

    others: list[pd.DataFrame] = field(default_factory=list)
    kept: int = 0
    other_rows: int = 0
    hosts: dict[str, list[object]] = field(default_factory=dict)  # host -> [first row, ports, lowest port]
    columns: list[str] | None = None
    limit: int | None = None

    def add(self, new: pd.DataFrame) -> None:
        """Count in the next frame of new server ports."""
        if self.columns is None:
            self.columns = list(new.columns)
        if new.empty or "answers_all" not in new:
            self._keep(new)
            return
        many = (new["answers_all"] & (new["proto"] == "tcp")).to_numpy()
        self._keep(new[~many])
        rows = new[many]
        if rows.empty:
            return
        per_host = rows.groupby("server_h", sort=False)["server_p"].agg(["size", "min"])
        firsts = rows.drop_duplicates("server_h").set_index("server_h")
        for host, (ports, lowest) in per_host.iterrows():
            if host in self.hosts:
                entry = self.hosts[host]
                entry[1] = int(entry[1]) + int(ports)  # type: ignore[call-overload]
                entry[2] = min(int(entry[2]), int(lowest))  # type: ignore[call-overload]
            else:
                self.hosts[host] = [detached(firsts.loc[[host]].reset_index()), int(ports), int(lowest)]

    def _keep(self, rows: pd.DataFrame) -> None:
        self.other_rows += len(rows)
        if self.limit is None or self.kept < self.limit:
            part = rows if self.limit is None else rows.head(self.limit - self.kept)
            self.others.append(detached(part) if len(part) < len(rows) else part)
            self.kept += len(part)

    @property
    def total(self) -> int:
        """Rows of the whole view."""
        return self.other_rows + len(self.hosts)

    def view(self) -> pd.DataFrame:
        """The first `limit` rows of the view (all without a limit), by first_seen."""
        parts = [p for p in self.others if len(p)]
        plain = pd.concat(parts, ignore_index=True) if parts else None
        if plain is None:
            plain = self.others[0] if self.others else pd.DataFrame(columns=self.columns or [])
        if "server_p" not in plain or "proto" not in plain:
            return plain
        view = plain.copy()
        view.insert(list(view.columns).index("server_p"), "port", view["server_p"].astype(str) + "/" + view["proto"])
        if self.hosts:
            firsts = []
            for first, ports, lowest in self.hosts.values():
                row = first.copy()  # type: ignore[attr-defined]
                row.insert(list(row.columns).index("server_p"), "port",
                           f"{ports:,} TCP ports ({lowest} up): answers every port")  # fmt: skip
                for column, empty in (("server_reply", None), ("services", "")):
                    if column in row:
                        row[column] = empty
                firsts.append(row)
            view = pd.concat([view, *firsts], ignore_index=True).sort_values("first_seen", kind="stable")
        view = view.drop(columns=[c for c in ("server_p", "proto", "answers_all") if c in view])
        return (view if self.limit is None else view.head(self.limit)).reset_index(drop=True)


def spill_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for a report's large tables (removed with the report)."""
    return temporary_directory("synack-report-", _WHAT)
