"""A store's identity and newest generation, kept inside the store itself.

`synack-store.json` at the store's root holds the id the store was given
once (also in its ledger's `meta`) and the newest generation its ledger
committed (written at most once a second, and at a writer's close). With it a ledger that is not the
store's (a `--ledger` of another store) is refused before anything is read
or written, and a ledger behind the store (a restored backup, a copy made
earlier) cannot write, nor answer as if it were current. A ledger ahead of
the marker (a crash between a commit and the marker's write) is the
store's newest state: the writer rewrites the marker.

On object storage the marker is an object like the others; pyarrow's
file systems offer no conditional write, so one writer per store prefix is
the operator's rule there, and the marker still catches a foreign or stale
ledger at open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from synack.ingest.errors import StoreError
from synack.ingest.store_files import StoreFS, tmp_name

MARKER = "synack-store.json"


@dataclass(frozen=True)
class Marker:
    """What the store says of itself: its id and its ledger's newest committed generation."""

    store_id: str
    generation: int


def read_marker(files: StoreFS) -> Marker | None:
    """The marker of the store `files`, or None when it has none (a new
    store, or one written before markers). Raises StoreError for a marker
    that is not one, OSError when it cannot be read."""
    try:
        data = files.read_bytes(files.root / MARKER)
    except FileNotFoundError:
        return None
    try:
        fields = json.loads(data.to_pybytes())
        return Marker(str(fields["store_id"]), int(fields["generation"]))
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"{files.root / MARKER} is damaged: it does not say which store this is") from None


def write_marker(files: StoreFS, marker: Marker) -> None:
    """Replace the marker of `files` atomically. Raises OSError."""
    final = files.root / MARKER
    text = json.dumps({"store_id": marker.store_id, "generation": marker.generation}) + "\n"
    files.write_bytes(tmp_name(final), text.encode())
    files.move(tmp_name(final), final)
    files.sync_dirs([final.parent])


def check_ledger(files: StoreFS, store_id: str | None, generation: int, marker: Marker | None, *,
                 writing: bool) -> None:  # fmt: skip
    """Raise StoreError unless a ledger of `store_id` at `generation` may be
    used (`writing`, or read) with the store whose marker is `marker`."""
    if marker is None:
        return
    if store_id is None:
        raise StoreError(
            f"the ledger {files.ledger} was written by an older synack than the store {files} (store id "
            f"{marker.store_id}, generation {marker.generation}): it is an old copy of this store's ledger; use "
            "the store's current ledger"
        )
    if store_id != marker.store_id:
        raise StoreError(
            f"the ledger {files.ledger} belongs to another store (id {store_id}), not to {files} (id "
            f"{marker.store_id}): pass this store's own ledger (--ledger)"
        )
    if generation < marker.generation:
        use = "write to" if writing else "answer from"
        raise StoreError(
            f"the ledger {files.ledger} is behind the store {files} (generation {generation}, the store is at "
            f"{marker.generation}): it is an older copy (a restored backup?) and synack will not {use} it. Put "
            "the store's current ledger back, or run 'synack check --adopt' to bring it up to the store's files"
        )
