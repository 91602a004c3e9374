"""The ledger module, snapshots, verified reads and the store's identity, in process.

Covers ingest.ledger (migrations from every earlier version, named writes
and their decoders), ingest.snapshot (one read per answer, a snapshot that
stays what it was while a writer commits, compacts and retires beside it)
and ingest.store_identity (a foreign, fresh or stale ledger refused).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest import ledger as ledger_module
from synack.ingest import store as store_module
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import StoreError, StoreLocked
from synack.ingest.ledger import (
    LEDGER_VERSION,
    MIGRATIONS,
    ChunkRow,
    ChunkSpan,
    DaySensor,
    FileRow,
    Ledger,
    read_state,
)
from synack.ingest.partials import COARSE, COARSE_SERVERS, Partial
from synack.ingest.rollups import Rollup
from synack.ingest.snapshot import Snapshot, StoreChanged, take_snapshot
from synack.ingest.store import Store
from synack.ingest.store_files import FileStamp, locate, retired_name
from synack.ingest.store_identity import MARKER
from synack.inventory.store_reader import InventoryError
from tests import shorthands as inventory

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("samples") / "store"
    ingest_paths([SAMPLES], store)
    return store


def _ledger_at(path: Path, version: int) -> sqlite3.Connection:
    """A ledger file holding the schema of `version`, as synack of that version wrote it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    conn = db  # the migrations run statement by statement on a plain connection too
    for produced, step in MIGRATIONS:
        if produced <= version:
            step(_Plain(conn))  # type: ignore[arg-type]
    db.execute(f"PRAGMA user_version = {0 if version == 1 else version}")
    return db


class _Plain:
    """A plain connection with the one helper the migrations use."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, *args: object) -> sqlite3.Cursor:
        return self.db.execute(*args)  # type: ignore[arg-type]

    def executescript_statements(self, script: str) -> None:
        for part in script.split(";"):
            if part.strip():
                self.db.execute(part)


def _fill(db: sqlite3.Connection, version: int) -> None:
    """Rows of one source, one record file, one partial and one roll-up, as version `version` held them."""
    db.execute("INSERT INTO sources VALUES ('s1','zeek','a.log','a.log',100,11,1,10,0,x'00',0,'t','t')")
    db.execute("INSERT INTO chunks VALUES ('s1',0,0,100,1,11,10,0,'t')")
    db.execute("INSERT INTO files (path, source_id, chunk, day, rows, pending) "
               "VALUES ('conn/date=2026-11-21/s1-000000.parquet','s1',0,'2026-11-21',10,0)")  # fmt: skip
    db.execute("INSERT INTO days VALUES ('2026-11-21', 1, 10)")
    db.execute("INSERT INTO garbage VALUES ('aggregates/servers/date=2026-11-20/old.parquet')")
    if version >= 2:
        coarse = 1  # "both kinds" before version 4; "servers only" (COARSE_SERVERS) from 4 on
        db.execute(f"INSERT INTO partials (name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, server_rows, "
                   f"client_rows, records, level, fine, coarse, pending) VALUES ('s1-000000','2026-11-21','s1',0,0,"
                   f"5,9,3,4,10,0,1,{coarse},0)")  # fmt: skip
        db.execute("INSERT INTO day_sensors VALUES ('2026-11-21','edge-1',10,9)")
    if version >= 3:
        db.execute("INSERT INTO rollups (month, name, days, server_rows, client_rows, pending) "
                   "VALUES ('2026-11','r-1','{\"2026-11-21\": 1}',3,4,0)")  # fmt: skip


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_every_earlier_ledger_migrates_and_decodes_the_same(tmp_path: Path, version: int) -> None:
    """A writer migrates the file (named forward steps, in one transaction); a reader
    of the old file migrates a copy in memory and decodes what the writer does."""
    store = tmp_path / "store"
    store.mkdir()
    db = _ledger_at(store / "ledger.sqlite", version)
    _fill(db, version)
    db.close()
    files = locate(store)
    state = read_state(files)  # read-only: the file stays at its version
    assert sqlite3.connect(store / "ledger.sqlite").execute("PRAGMA user_version").fetchone()[0] == (
        0 if version == 1 else version
    )
    assert state.store_id is None  # an identity made up in memory is none
    assert [f.path for f in state.record_files] == ["conn/date=2026-11-21/s1-000000.parquet"]
    assert state.record_files[0].stamp is None  # written before stamps
    book = Ledger.open(files, records_exist=False)
    try:
        version_now = sqlite3.connect(store / "ledger.sqlite").execute("PRAGMA user_version").fetchone()[0]
        assert int(version_now) == LEDGER_VERSION
        assert len(book.store_id) == 32 and book.generation == 0
        assert book.retired() == ["aggregates/servers/date=2026-11-20/old.parquet"]  # past its grace
        partials = book.partials()
        rollups = book.rollups()
        if version >= 2:
            (p,) = partials
            expected = COARSE if version < 4 else COARSE_SERVERS  # the rule lives in the 3 -> 4 migration
            assert p.coarse == expected and p.fine and p.server_stamp is None
            assert [p.name for p in state.partials] == [p.name for p in partials]
            assert state.partials[0].coarse == expected
        else:
            assert partials == [] and state.partials == ()
        if version >= 3:
            assert rollups["2026-11"].days == {"2026-11-21": 1} and rollups["2026-11"].server_stamp is None
            assert state.rollups == rollups
        state_after = read_state(files)
        assert state_after.store_id == book.store_id
        assert state_after.partials == state.partials and state_after.days == state.days
    finally:
        book.close()


def test_named_writes_round_trip_through_the_decoders(tmp_path: Path) -> None:
    files = locate(tmp_path / "store")
    (tmp_path / "store").mkdir()
    book = Ledger.open(files, records_exist=False)
    stamps = FileStamp(1234, 0xDEADBEEF), FileStamp(99, 7), FileStamp(5, 6)
    partial = Partial("s-000000", "2026-11-21", "s", 0, 0, 10, 20, 3, 4, 7, server_stamp=stamps[1],
                      client_stamp=stamps[2])  # fmt: skip
    chunk = ChunkRow("s", "zeek", "/logs/conn.log", ChunkSpan(0, 0, 500, 1, 8, 7, 1), b"#fields\t...", False)
    rows = [FileRow("conn/date=2026-11-21/s-000000.parquet", "s", 0, "2026-11-21", 7, stamps[0], pending=True)]
    seen: list[int] = []
    book.on_commit = lambda: seen.append(book.generation)
    with book.transaction():
        book.add_chunk(chunk, rows, [partial], [DaySensor("2026-11-21", "edge-1", 7, 20)])
    with pytest.raises(StoreError, match="moved"), book.transaction():
        book.add_chunk(chunk, rows, [], [])  # the offset is 500 now, not 0
    rollup = Rollup("2026-11", "r-x", {"2026-11-21": 1}, 3, 4, stamps[1], stamps[2])
    with book.transaction():
        book.put_rollup(rollup)
    assert seen == [1, 2]  # one generation per committed transaction, the failed one none
    assert book.file_rows() == rows
    assert book.partials(pending=True) == [partial]
    assert book.rollups(pending=True) == {"2026-11": rollup}
    state = book.source_state("s")
    assert state is not None and state.committed_bytes == 500 and state.next_line == 8 and state.rows == 7
    snap = read_state(files)
    assert snap.record_files == tuple(rows) and snap.partials == (partial,) and snap.generation == 2
    assert snap.rollups == {}  # a pending roll-up is not read (its days' partials are)
    assert snap.day_sensors == (DaySensor("2026-11-21", "edge-1", 7, 20),)
    book.close()


def _opens(*args: str) -> int:
    before = ledger_module.OPENS["count"]
    result = runner.invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return ledger_module.OPENS["count"] - before


def test_one_ledger_read_per_answer(sample_store: Path, tmp_path: Path) -> None:
    """`servers`, `status` and a whole report each read the ledger once (before: 3, 5 and 36)."""
    assert _opens("servers", "--store", str(sample_store), "--nets", "all") == 1
    assert _opens("new-ports", "--store", str(sample_store), "--since", "2026-11-20", "--clients") == 1
    assert _opens("status", "--store", str(sample_store)) == 1
    (tmp_path / "r").mkdir()
    assert _opens("report", "--store", str(sample_store), "--date", "2026-11-21", "-o", str(tmp_path / "r")) == 1


def test_a_snapshot_stays_what_it_was_while_a_writer_commits_and_compacts(tmp_path: Path) -> None:
    """An answer from a snapshot taken before more logs are ingested and
    compacted is the answer the store gave then, file for file, while the
    files it names are retired; once their grace is over it says the store
    changed (never "damaged", never a different answer)."""
    store = tmp_path / "store"
    days = sorted(p for p in SAMPLES.iterdir() if p.name.startswith("2026"))
    ingest_paths(days[:2], store, chunk_bytes=2000)
    before = take_snapshot(locate(store))
    answer = inventory.servers(before, nets="all")
    clients = inventory.client_pairs(before, nets="all")
    ingest_paths([SAMPLES], store, chunk_bytes=2000)  # more days: compactions, a new roll-up
    with Store.open(store) as opened:
        opened.rebuild_aggregates()  # every partial replaced: the snapshot's are all retired
    retired = list(store.rglob(".*.retired"))
    assert retired and not [p for p in store.rglob("*.parquet") if p.name.endswith(".retired")]
    pd.testing.assert_frame_equal(inventory.servers(before, nets="all"), answer)
    pd.testing.assert_frame_equal(inventory.client_pairs(before, nets="all"), clients)
    now = inventory.servers(store, nets="all")
    assert len(now) > len(answer) and take_snapshot(locate(store)).generation > before.generation
    with Store.open(store, grace=0) as opened:  # the grace is over: the retired files go
        opened.collect_retired()
    assert not list(store.rglob(".*.retired"))
    # The snapshot answers again from the tables it keeps (READ_CACHE_BYTES) ...
    pd.testing.assert_frame_equal(inventory.servers(before, nets="all"), answer)
    # ... and a read of that state that needs the deleted files says the store changed.
    with pytest.raises(StoreChanged, match="changed under this query .*; run it again"):
        inventory.servers(Snapshot(before.state), nets="all")


def test_a_snapshot_keeps_a_table_from_its_second_read(tmp_path: Path) -> None:
    """A question that streams through its files once keeps none of their
    tables (they would hold the heap's pages, not save a read: a year's
    `clients` at 350k records a day peaked 120 MB higher); a read made
    again is kept and answered from then on, the same answer."""
    store = tmp_path / "store"
    ingest_paths([SAMPLES], store)
    snap = take_snapshot(locate(store))
    first = inventory.clients(snap, nets="all")
    assert not snap.cache.tables and snap.cache.asked
    assert inventory.clients(snap, nets="all").equals(first) and snap.cache.tables and not snap.cache.hits
    pd.testing.assert_frame_equal(inventory.clients(snap, nets="all"), first)
    assert snap.cache.hits >= len(snap.cache.tables)


@pytest.mark.parametrize("name", ["st#ore", "st?ore", "st%41ore", "my store", "a%2Fb"])
def test_a_store_path_is_a_path_whatever_it_holds(tmp_path: Path, name: str) -> None:
    """`#`, `?`, `%` and spaces are characters of a path, not of a URL: the
    store works, and `%41` never reads the ledger of a store named `A`."""
    decoy = tmp_path / name.replace("%41", "A").replace("%2F", "/")
    ingest_paths([SAMPLES / "2026-11-18"], decoy)  # a different store at the URL-decoded name
    store = tmp_path / name
    ingest_paths([SAMPLES], store)
    result = runner.invoke(app, ["status", "--json", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["records"] == 919
    plain = tmp_path / "plain"
    ingest_paths([SAMPLES], plain)
    pd.testing.assert_frame_equal(inventory.servers(store, nets="all"), inventory.servers(plain, nets="all"))
    with Store.open(store):  # a writer opens it too
        pass


def test_a_foreign_ledger_is_refused_before_anything_is_read_or_written(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    ingest_paths([SAMPLES / "2026-11-18"], one)
    ingest_paths([SAMPLES / "2026-11-19"], two)
    marker = (two / MARKER).read_bytes()
    with pytest.raises(StoreError, match="belongs to another store"):
        with Store.open(two, ledger=one / "ledger.sqlite"):
            pass
    with pytest.raises(InventoryError, match="belongs to another store"):
        inventory.servers(inventory.Inventory(two, ledger=one / "ledger.sqlite").store)
    with pytest.raises(StoreError, match="belongs to another ledger"):
        with Store.open(two, ledger=tmp_path / "fresh.sqlite"):
            pass
    assert not (tmp_path / "fresh.sqlite").exists() and (two / MARKER).read_bytes() == marker


def test_a_second_ledger_on_a_store_cannot_write_beside_the_first(tmp_path: Path) -> None:
    """The lock guards the store's directory, whichever ledger is named; a
    copy of the ledger falls behind at the first commit of the real one and
    is refused for writing and for answering."""
    store = tmp_path / "store"
    ingest_paths([SAMPLES / "2026-11-18"], store)
    copy = tmp_path / "copy.sqlite"
    shutil.copy(store / "ledger.sqlite", copy)
    with Store.open(store):
        with pytest.raises(StoreLocked):
            with Store.open(store, ledger=copy):
                pass
    ingest_paths([SAMPLES / "2026-11-19"], store)
    with pytest.raises(StoreError, match="behind the store"):
        with Store.open(store, ledger=copy):
            pass
    with pytest.raises(StoreError, match="behind the store"):
        take_snapshot(locate(store, copy))
    result = runner.invoke(app, ["ingest", str(SAMPLES / "2026-11-20"), "--store", str(store), "--ledger", str(copy)])
    assert result.exit_code == 2 and "behind the store" in result.output
    assert len(inventory.servers(store, nets="all")) > 0  # the store itself is untouched


def test_a_ledger_ahead_of_the_marker_rewrites_it(tmp_path: Path) -> None:
    """A crash between a commit and the marker's write leaves the ledger ahead: that is the newest state."""
    store = tmp_path / "store"
    ingest_paths([SAMPLES / "2026-11-18"], store)
    marker = json.loads((store / MARKER).read_text())
    (store / MARKER).write_text(json.dumps({**marker, "generation": marker["generation"] - 3}))
    assert len(inventory.servers(store, nets="all")) > 0
    with Store.open(store) as opened:
        assert json.loads((store / MARKER).read_text())["generation"] == opened.ledger.generation
    assert json.loads((store / MARKER).read_text())["store_id"] == marker["store_id"]


def test_retired_files_are_hidden_from_folder_readers_at_once(tmp_path: Path) -> None:
    """What a compaction replaced is under a hidden name right after its
    commit, so pyarrow's dataset discovery (and DuckDB's *.parquet) never
    count a record twice; `check` knows the retired files within their grace."""
    import pyarrow.dataset as ds

    from synack.ingest.store_check import check_store

    store = tmp_path / "store"
    ingest_paths([SAMPLES], store, chunk_bytes=2000)
    records = ds.dataset(store / "conn", format="parquet", partitioning="hive").count_rows()
    with Store.open(store) as opened:
        opened.rebuild_aggregates()
        assert check_store(opened).ok
        retired = [store / rel for rel in opened.ledger.retired()]
        live = {store / f.path for f in opened.ledger.file_rows()}
        live |= {f for p in opened.ledger.partials(pending=None) for f in p.paths(store)}
        live |= {f for r in opened.ledger.rollups().values() for f in r.paths(store)}
    assert retired and all(retired_name(p).exists() for p in retired)
    assert all(not p.exists() for p in retired if p not in live)  # a name committed again is live again
    assert ds.dataset(store / "conn", format="parquet", partitioning="hive").count_rows() == records == 919


def test_ledger_version_is_the_last_migration() -> None:
    assert [v for v, _ in MIGRATIONS] == list(range(1, LEDGER_VERSION + 1))


def test_a_store_the_previous_synack_wrote_answers_before_any_writer_migrates_it(tmp_path: Path) -> None:
    """A version-5 ledger (with its identity) is read as it is: queries answer at once after an upgrade."""
    store = tmp_path / "store"
    ingest_paths([SAMPLES], store)
    before = inventory.servers(store, nets="all")
    db = sqlite3.connect(store / "ledger.sqlite")
    db.executescript("ALTER TABLE days DROP COLUMN pruned; PRAGMA user_version = 5;")
    db.close()
    pd.testing.assert_frame_equal(inventory.servers(store, nets="all"), before)
    assert sqlite3.connect(store / "ledger.sqlite").execute("PRAGMA user_version").fetchone()[0] == 5  # read only
    with Store.open(store) as opened:
        assert opened.ledger.pruned_days() == []  # a writer migrates it
    assert sqlite3.connect(store / "ledger.sqlite").execute("PRAGMA user_version").fetchone()[0] == LEDGER_VERSION


def test_a_busy_writer_writes_its_marker_at_most_once_a_second_and_exactly_at_its_close(tmp_path: Path) -> None:
    """The marker may lag the ledger inside a run (a crash then leaves the ledger ahead: the newest state),
    never behind it once the writer closes, so a backup taken during the run is refused afterwards."""
    from synack.ingest.conn_ingest import ingest_into
    from synack.ingest.ledger.migrations import copy_ledger

    store = tmp_path / "store"
    writes: list[int] = []
    real = store_module.write_marker
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "write_marker", lambda files, m: (writes.append(m.generation), real(files, m)))
        with Store.open(store) as opened:
            for day in sorted(SAMPLES.glob("2026-*")):
                ingest_into(opened, [day])
            copy_ledger(store / "ledger.sqlite", tmp_path / "mid-run.sqlite")  # an online backup
            generation = opened.ledger.generation
    assert json.loads((store / MARKER).read_text())["generation"] == generation == writes[-1]
    assert len(writes) < generation / 2  # not one write per commit
    ingest_paths([SAMPLES / "current"], store)
    with pytest.raises(StoreError, match="behind the store"):
        with Store.open(store, ledger=tmp_path / "mid-run.sqlite"):
            pass
