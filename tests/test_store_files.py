"""Locating a store (ingest.store_files.locate): directories, file:// and
object-storage URLs, where the ledger and lock go, and what a worker
process receives."""

from __future__ import annotations

import pickle
from pathlib import Path, PurePosixPath

import pytest

from synack.ingest.errors import StoreError
from synack.ingest.store_files import locate

S3 = "s3://bucket/some/prefix?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1"


def test_a_directory_keeps_its_ledger_and_lock_inside(tmp_path: Path) -> None:
    files = locate(tmp_path / "store")
    assert files.local and files.root == tmp_path / "store"
    assert files.ledger == tmp_path / "store" / "ledger.sqlite" and files.lock == tmp_path / "store" / "lock"
    assert locate(f"file://{tmp_path}/store") == files
    elsewhere = locate(tmp_path / "store", tmp_path / "l" / "edge.sqlite")
    # The single-writer lock guards the store's directory, whichever ledger is named.
    assert elsewhere.ledger == tmp_path / "l" / "edge.sqlite" and elsewhere.lock == tmp_path / "store" / "lock"


def test_an_object_store_needs_a_local_ledger_and_hides_its_options(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="pass --ledger PATH"):
        locate(S3)
    files = locate(S3, tmp_path / "edge.sqlite")
    assert not files.local and files.root == PurePosixPath("bucket/some/prefix")
    assert str(files) == "s3://bucket/some/prefix"  # options (and any key in them) never reach a message
    assert files.rel(files.root / "conn" / "date=2026-11-20" / "x.parquet") == "conn/date=2026-11-20/x.parquet"
    with pytest.raises(StoreError, match="names no bucket"):
        locate("s3://", tmp_path / "edge.sqlite")
    with pytest.raises(StoreError, match="cannot open the store"):
        locate("nosuchscheme://x/y", tmp_path / "edge.sqlite")


def test_a_worker_receives_the_same_store(tmp_path: Path) -> None:
    """A StoreFS crosses to a worker process as its location and ledger,
    and a local one is made absolute first (the worker's directory differs)."""
    remote = locate(S3, tmp_path / "edge.sqlite")
    again = pickle.loads(pickle.dumps(remote))
    assert again == remote and again.root == remote.root and not again.local
    local = locate(Path("relative-store"))
    resolved = pickle.loads(pickle.dumps(local.resolved()))
    assert resolved.local and resolved.root == Path("relative-store").resolve()
    assert resolved.ledger == Path("relative-store").resolve() / "ledger.sqlite"
