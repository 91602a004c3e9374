"""The ledger: the single truth of what is in a store.

The ledger is a SQLite file (`ledger.sqlite` in a local store, or the
`--ledger` file of a store on object storage). Its tables:

* `sources`, `chunks`: which log sources were read to which byte and line;
* `files`: every committed record, quarantine and notice file, with its
  rows, size and CRC (its *stamp*: readers verify every file they read);
* `days`, `day_sensors`: records per day (and the day's *generation*,
  bumped by each commit that adds to it) and per (day, sensor);
* `partials`, `rollups`: the aggregate files (ingest.partials,
  ingest.rollups), with the stamps of their two files;
* `retired`: files a compaction replaced, kept under hidden names until
  their grace period ends (Store.collect_retired);
* `files_seen`: files read to their end at a size and mtime;
* `meta`: the store's identity (`store_id`) and the ledger's `generation`,
  bumped by every write transaction (ingest.store_identity).

Schema changes are named forward migrations (MIGRATIONS): each is a
function with the version it produces, and any rule for reading rows
written before it lives in that function. A writer migrates the file; a
reader (`read_state`) of an older ledger migrates a copy in memory, so
no decoder anywhere else knows old versions.

The package is the only code that speaks SQL: `migrations` (the schema,
its versions, opening a file), `rows` (every row decoded into a dataclass,
in one place), `writer` (`Ledger`: a writer's connection, named reads and
writes) and `reader` (`read_state`). `read_state` reads everything a
reader needs in one transaction (a `LedgerState`; ingest.snapshot makes
it the `Snapshot` every answer is computed from).
"""

from __future__ import annotations

from synack.ingest.ledger.migrations import (
    LEDGER_VERSION,
    MIGRATIONS,
    OPENS,
    damaged_ledger,
    ledger_write_error,
    new_store_id,
)
from synack.ingest.ledger.reader import LedgerState, listed_now, read_state
from synack.ingest.ledger.rows import (
    BlockMark,
    ChunkRow,
    ChunkSpan,
    DaySensor,
    FileRow,
    SourceRow,
    SourcesSummary,
    SourceState,
)
from synack.ingest.ledger.writer import Ledger, now_seconds

__all__ = [
    "LEDGER_VERSION", "MIGRATIONS", "OPENS", "BlockMark", "ChunkRow", "ChunkSpan", "DaySensor", "FileRow", "Ledger",
    "LedgerState", "SourceRow", "SourceState", "SourcesSummary", "damaged_ledger", "ledger_write_error", "listed_now",
    "new_store_id", "now_seconds", "read_state",
]  # fmt: skip
