"""The store's identity files merged as they accumulate, so a query reads a few, not one per log.

Every chunk of an identity log (an hourly ssl.log, a `watch` pass over a
live one) commits one small file of facts (ingest.server_identity). Files
are tiered by their row count (tier = floor(log_8(rows))); when a tier
holds MERGE_FILES files they are merged into one (the facts reduced
again: a fact seen in many files is one row), swapped in by one ledger
transaction, the old files retired. Like a log-structured merge, each
fact is rewritten O(log n) times and a store keeps O(log n) identity
files per tier, whatever its age.
"""

from __future__ import annotations

import hashlib
import math

import pyarrow as pa

from synack.ingest.chunk_files import write_record_file
from synack.ingest.ledger import FileRow
from synack.ingest.provenance import Provenance, from_schema, stamped, union
from synack.ingest.server_identity import IDENTITY_DIR, IDENTITY_SCHEMA, merged_facts
from synack.ingest.store import Store
from synack.ingest.store_files import FileDamaged, tmp_name

#: Files of one tier merged at once.
MERGE_FILES = 8
#: The source a merged identity file belongs to (it has no log of its own).
MERGED_SOURCE = "identity"


def tier_of(rows: int) -> int:
    """The tier of a file of `rows` facts: floor(log_MERGE_FILES(rows))."""
    return int(math.log(max(rows, 1), MERGE_FILES))


def compact_identity(store: Store) -> int:
    """Merge each tier of the store's identity files that holds MERGE_FILES
    files or more into one; return the files replaced (0: none)."""
    book, files, root = store.ledger, store.files, store.root
    replaced = 0
    damaged: set[str] = set()
    while True:
        listed = [f for f in book.file_rows(pending=False)
                  if f.day is None and f.path.startswith(IDENTITY_DIR + "/") and f.path not in damaged]  # fmt: skip
        tiers: dict[int, list[FileRow]] = {}
        for f in listed:
            tiers.setdefault(tier_of(f.rows), []).append(f)
        full = [group for _, group in sorted(tiers.items()) if len(group) >= MERGE_FILES]
        if not full:
            return replaced
        group = full[0][: MERGE_FILES * MERGE_FILES]
        tables: list[pa.Table] = []
        provenances: list[Provenance | None] = []
        for f in group:
            try:
                table = files.read_verified(root / f.path, f.stamp, f.rows)
                provenances.append(from_schema(table.schema))
                tables.append(table.select(IDENTITY_SCHEMA.names).cast(IDENTITY_SCHEMA))
            except (FileDamaged, FileNotFoundError):
                damaged.add(f.path)  # its facts come from a log: `synack check` reports it, nothing here can redo it
                store.repairs.append(f"the identity file {f.path} is damaged: left out of the merge of identity files")
        if len(tables) < len(group):
            continue
        digest = hashlib.sha256("\n".join(sorted(f.path for f in group)).encode()).hexdigest()[:16]
        merged = stamped(merged_facts(tables), union((MERGED_SOURCE, 0), provenances))
        final = root / IDENTITY_DIR / f"{MERGED_SOURCE}-{digest}.parquet"
        stamp = write_record_file(files, merged, tmp_name(final))
        row = FileRow(files.rel(final), MERGED_SOURCE, 0, None, len(merged), stamp)
        with store.transaction(cleanup=[final]):
            book.remove_files(f.path for f in group)
            retired = store.retire(root / f.path for f in group)
            book.add_files([row])
        store.hide(retired, keep=[final])
        store.publish([final])
        replaced += len(group)
