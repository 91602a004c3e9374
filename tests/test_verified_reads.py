"""Every file a query reads is verified: random byte damage in any kind of
store file (records, partials, roll-ups, notices) is refused in one line,
never answered wrongly with exit 0.

Before stamps, 25 of 41 single overwrites of one servers partial gave a
silently wrong `servers -f csv`; here every damage either gives the exact
answer (the damaged file was not needed) or stops with StoreError naming
the file and `synack check --repair`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import SynackError
from synack.ingest.partials import partial_path
from synack.ingest.rollups import rollup_path
from synack.ingest.snapshot import take_snapshot
from synack.ingest.store_files import locate
from synack.inventory.dailies import read_catalog, select
from tests import shorthands as inventory

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"
runner = CliRunner()
Query = Callable[[Path], pd.DataFrame]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples (records, partials, a roll-up) and a notice log, small chunks (many files)."""
    base = tmp_path_factory.mktemp("verified")
    notices = base / "logs" / "notice.log"
    notices.parent.mkdir()
    notices.write_text("".join(
        json.dumps({"ts": 1795000000.5 + i, "uid": f"C{i}", "note": "SynAck::New_Server_Port", "msg": f"new {i}",
                    "src": "10.1.0.1", "dst": f"10.1.0.{i % 7 + 2}", "p": 8000 + i, "proto": "tcp",
                    "sensor": "edge-1"}) + "\n" for i in range(300)))  # fmt: skip
    store = base / "store"
    ingest_paths([SAMPLES, notices], store, chunk_bytes=3000)
    return store


def _whole_history(store: Path) -> pd.DataFrame:
    return inventory.servers(store, nets="all")


def _pairs(store: Path) -> pd.DataFrame:
    return inventory.client_pairs(store, nets="all")


def _notices(store: Path) -> pd.DataFrame:
    return inventory.Inventory(store, nets="all").notices()


def _straddling(since: dt.datetime) -> Query:
    """A query whose range starts inside a partial: the records behind it are read."""

    def query(store: Path) -> pd.DataFrame:
        return inventory.servers(store, since, nets="all")

    return query


def _targets(store: Path, kind: str) -> list[tuple[Path, list[Query]]]:
    """The files of `kind` with the queries that read them."""
    snap = take_snapshot(locate(store))
    if kind == "records":
        out = []
        for p in snap.partials:
            if p.fine and p.t_max > p.t_min:
                since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=(p.t_min + p.t_max) // 2)
                for path, _, _ in snap.record_files(p.day, p.source_id, (p.chunk_lo, p.chunk_hi)):
                    out.append((store / path, [_straddling(since)]))
        return out
    if kind == "notices":
        return [(p, [_notices]) for p in sorted((store / "notices").glob("*.parquet"))]
    out = []
    for aggregate, query in (("servers", _whole_history), ("clients", _pairs)):
        read = select(read_catalog(snap), None, None, aggregate)  # what the whole history reads
        if kind == "partials":
            out += [(partial_path(store, aggregate, p.day, p.name), [query])
                    for p in read.partials]  # fmt: skip
        else:
            out += [(rollup_path(store, aggregate, r.month, r.name), [query]) for r in read.rollups]
    return out


def _damage_runs(store: Path, kind: str, count: int, seed: int) -> dict[str, int]:
    """`count` random 8-byte overwrites of files of `kind`, each undone after
    its queries; return how many answers were exact and how many refused.
    Fails on any wrong answer, and on any error that is not a SynackError."""
    rng = random.Random(seed)
    targets = _targets(store, kind)
    assert targets, kind
    expected: dict[tuple[Path, int], pd.DataFrame] = {}
    outcome = {"exact": 0, "refused": 0}
    for _ in range(count):
        path, queries = rng.choice(targets)
        original = path.read_bytes()
        for i, query in enumerate(queries):
            if (path, i) not in expected:
                expected[(path, i)] = query(store)
        data = bytearray(original)
        at = rng.randrange(len(data))
        data[at : at + 8] = bytes(rng.randrange(256) for _ in range(len(data[at : at + 8])))
        if bytes(data) == original:
            continue
        path.write_bytes(bytes(data))
        try:
            for i, query in enumerate(queries):
                try:
                    answer = query(store)
                except SynackError as err:
                    assert "synack check --repair" in str(err) and path.name in str(err), err
                    outcome["refused"] += 1
                    continue
                pd.testing.assert_frame_equal(answer, expected[(path, i)], obj=f"{path.name} damaged at {at}")
                outcome["exact"] += 1
        finally:
            path.write_bytes(original)
    return outcome


@pytest.mark.parametrize("kind", ["records", "partials", "rollups", "notices"])
def test_random_damage_is_refused_never_answered_wrongly(store: Path, kind: str) -> None:
    outcome = _damage_runs(store, kind, 12, seed=hash(kind) % 1000)
    assert outcome["refused"] > 0  # the damage was met, and stopped the query


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["records", "partials", "rollups", "notices"])
def test_a_hundred_random_damages_per_file_kind_give_no_wrong_answer(store: Path, kind: str) -> None:
    outcome = _damage_runs(store, kind, 100, seed=7)
    assert outcome["refused"] >= 50, outcome


def test_a_damaged_file_is_one_line_naming_it_and_the_repair_exit_2(store: Path, tmp_path: Path) -> None:
    (victim,) = [p for p in (store / "rollups" / "servers").rglob("*.parquet")][:1]
    original = victim.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the data pages
    victim.write_bytes(bytes(data))
    try:
        result = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all", "-f", "csv"])
        assert result.exit_code == 2
        assert victim.name in result.output and "synack check --repair" in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
        check = runner.invoke(app, ["check", "--store", str(store)])
        assert check.exit_code == 1 and victim.name in check.output
    finally:
        victim.write_bytes(original)
    assert runner.invoke(app, ["check", "--store", str(store)]).exit_code == 0


def test_a_file_moved_between_two_of_its_names_is_still_read(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A committed file that a writer moves into place (temporary -> final)
    between the reader's try of its final name and of its temporary one is
    read on the next pass, not reported missing. Before: a query beside a
    compacting `watch` failed once with "damaged (missing)" under load."""
    from synack.ingest.store_files import FileStamp, StoreFS, tmp_name

    final = tmp_path / "f.parquet"
    data = b"committed bytes"
    tmp_name(final).write_bytes(data)
    files = locate(tmp_path)
    real = StoreFS.read_bytes
    tries: list[str] = []

    def moved_after_first(self: StoreFS, path: Path) -> object:
        tries.append(Path(path).name)
        if len(tries) == 1:
            try:
                return real(self, path)
            finally:
                tmp_name(final).rename(final)  # the writer publishes between the two tries
        return real(self, path)

    monkeypatch.setattr(StoreFS, "read_bytes", moved_after_first)
    assert bytes(files.verified_bytes(final, FileStamp.of(data))) == data
    assert tries == ["f.parquet", ".f.parquet.tmp", ".f.parquet.retired", "f.parquet"]


def test_a_file_read_again_with_other_filters_is_verified_once(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot keeps the verified bytes of the files it read last: the
    same file read with other options (a host view reads the year's server
    sightings once per question) is parsed again, not read and checksummed
    again, and gives what a fresh read gives; damage before the first read
    is still refused."""
    import pyarrow.compute as pc

    from synack.ingest.store_files import StoreFS

    snap = take_snapshot(locate(store))
    rollup = next(iter(snap.rollups.values()))
    rel = snap.rollup_file("servers", rollup)
    reads: list[str] = []
    real = StoreFS.verified_bytes
    monkeypatch.setattr(
        StoreFS, "verified_bytes", lambda self, path, stamp: reads.append(path) or real(self, path, stamp)
    )
    wide = snap.read(rel, rollup.server_stamp, rollup.server_rows)
    narrow = snap.read(rel, rollup.server_stamp, None, filters=pc.field("server_p") == 22)
    assert len(reads) == 1 and wide.num_rows == rollup.server_rows
    assert narrow.equals(wide.filter(pc.field("server_p") == 22)) and 0 < narrow.num_rows < wide.num_rows
    original = (store / rel).read_bytes()
    fresh = take_snapshot(locate(store))
    (store / rel).write_bytes(b"damaged")
    try:
        with pytest.raises(SynackError, match="damaged"):
            fresh.read(rel, rollup.server_stamp, rollup.server_rows)
    finally:
        (store / rel).write_bytes(original)
