"""A store on object storage (ingest.store_files), against a real S3 API
server process (moto's server mode): every answer equals a local store's,
the bucket never shows a reader an uncommitted or half-written object, a
crash at any step of a commit or a compaction loses and doubles nothing,
the Dask engine writes it from worker processes, and a wrong location is
one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.store_files import locate
from tests.engine_answers import answers, generated_logs
from tests.s3_server import S3Server, s3_server

#: End to end on real processes: `python -m pytest -m 'not slow'` leaves them out (CI runs them).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"
CHUNK = 192 << 10
runner = CliRunner()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def _objects(s3: S3Server, bucket: str) -> list[str]:
    """Every object of `bucket` (paths below it), directories left out."""
    infos = s3.filesystem().get_file_info(pafs.FileSelector(bucket, recursive=True))
    return sorted(i.path.split("/", 1)[1] for i in infos if i.type == pafs.FileType.File)


def _assert_clean(s3: S3Server, bucket: str, url: str, ledger: Path, rows: int) -> None:
    """No temporary object is left, `synack check` finds ledger and bucket in
    agreement, and a reader listing the bucket (as pandas, DuckDB or Spark
    would, Hive-partitioned) counts exactly the committed records."""
    objects = _objects(s3, bucket)
    # Retired objects (replaced by a compaction) stay hidden until their grace period ends; nothing else is hidden.
    names = [o.rsplit("/", 1)[-1] for o in objects]
    assert objects and not [n for n in names if n.startswith(".") and not n.endswith(".parquet.retired")]
    check = runner.invoke(app, ["check", "--store", url, "--ledger", str(ledger)])
    assert check.exit_code == 0, check.output
    listed = ds.dataset(f"{bucket}/store/conn", filesystem=s3.filesystem(), format="parquet", partitioning="hive")
    assert listed.count_rows() == rows


@pytest.mark.parametrize("which", ["samples", "generated"])
def test_a_store_on_s3_answers_exactly_as_a_local_one(which: str, s3: S3Server, tmp_path: Path) -> None:
    logs = [SAMPLES] if which == "samples" else [generated_logs(tmp_path / "logs")]
    since, until = ("2026-11-19", "2026-11-22") if which == "samples" else ("2026-11-19", "2026-11-21")
    bucket = s3.new_bucket()
    url, ledger = s3.url(bucket, "store"), tmp_path / "ledgers" / "edge.sqlite"
    local = ingest_paths(logs, tmp_path / "local", chunk_bytes=CHUNK)
    remote = ingest_paths(logs, locate(url, ledger), chunk_bytes=CHUNK)
    assert remote.rows == local.rows > 0 and remote.quarantined == local.quarantined
    expected = answers(tmp_path / "local", since, until)
    assert all(expected[q].count("\n") > 1 for q in ("servers", "clients", "new-ports"))  # nothing compared empty
    assert answers(url, since, until, ledger=ledger, reports=tmp_path / "s3-report") == expected
    assert not (tmp_path / "ledgers" / "conn").exists()  # nothing but the ledger is written locally
    _assert_clean(s3, bucket, url, ledger, remote.rows)
    assert ingest_paths(logs, locate(url, ledger), chunk_bytes=CHUNK).rows == 0  # again: nothing new


def test_a_lost_edge_ledger_is_adopted_from_the_bucket(s3: S3Server, tmp_path: Path) -> None:
    """The ledger of an S3 store lives on the edge host: lost with it, `check --adopt` rebuilds it from the
    bucket's files with the same answers, and the logs read again add nothing."""
    bucket = s3.new_bucket()
    url, ledger = s3.url(bucket, "store"), tmp_path / "edge.sqlite"
    written = ingest_paths([SAMPLES], locate(url, ledger), chunk_bytes=CHUNK)
    expected = answers(url, "2026-11-19", "2026-11-22", ledger=ledger, reports=tmp_path / "before")
    ledger.unlink()
    result = runner.invoke(app, ["check", "--adopt", "--store", url, "--ledger", str(ledger)])
    assert result.exit_code == 0, result.output
    assert "from the store's files alone" in result.output
    adopted = answers(url, "2026-11-19", "2026-11-22", ledger=ledger, reports=tmp_path / "after")
    # A log that left nothing in the store (the samples' dns logs name no server) is no source the files know of.
    before, after = json.loads(expected.pop("status")), json.loads(adopted.pop("status"))
    assert after.pop("sources") == before.pop("sources") - 4 and after == before
    assert adopted == expected
    _assert_clean(s3, bucket, url, ledger, written.rows)
    assert ingest_paths([SAMPLES], locate(url, ledger), chunk_bytes=CHUNK).rows == 0


@pytest.mark.parametrize("fault", ["files-written:2", "ledger-committed:2", "first-rename:3", "merge-committed:1"])
def test_a_crash_at_any_step_on_s3_loses_and_doubles_nothing(fault: str, s3: S3Server, tmp_path: Path) -> None:
    """The ingest process is killed (SIGKILL) between two steps of a commit or
    a compaction; the next run recovers (publishes or deletes the objects the
    ledger says) and the store answers as one never interrupted."""
    bucket = s3.new_bucket()
    url, ledger = s3.url(bucket, "store"), tmp_path / "ledger.sqlite"
    args = ["ingest", str(SAMPLES), "--store", url, "--ledger", str(ledger), "-q"]
    command = [sys.executable, "-m", "synack", *args]
    crashed = subprocess.run([sys.executable, str(ROOT / "tests" / "crash_entry.py"), fault, *args], cwd=ROOT,
                             capture_output=True)  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr  # the fault point was reached
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    local = ingest_paths([SAMPLES], tmp_path / "local")
    assert answers(url, "2026-11-19", "2026-11-22", ledger=ledger, reports=tmp_path / "r") == answers(
        tmp_path / "local", "2026-11-19", "2026-11-22"
    )
    _assert_clean(s3, bucket, url, ledger, local.rows)


def test_the_dask_engine_writes_an_s3_store_from_its_workers(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes write the chunks and merges straight to the bucket
    (the driver commits); one worker is killed mid-task and its task retried;
    `synack rebuild --engine dask` on the bucket changes no answer."""
    distributed = pytest.importorskip("dask.distributed")
    from synack.ingest.dask_engine import ingest_dask, rebuild_dask
    from synack.ingest.store import Store

    logs = generated_logs(tmp_path / "logs")
    bucket = s3.new_bucket()
    url, ledger = s3.url(bucket, "store"), tmp_path / "ledger.sqlite"
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("SYNACK_DASK_FAULT", str(marker))
    client: Any
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            with Store.open(url, ledger=ledger) as store:
                run = ingest_dask(store, [logs], client, chunk_bytes=CHUNK)
            assert marker.exists()  # a worker did die
            monkeypatch.delenv("SYNACK_DASK_FAULT")
            local = ingest_paths([logs], tmp_path / "local", chunk_bytes=CHUNK)
            assert run.rows == local.rows and run.merges > 0
            expected = answers(tmp_path / "local", "2026-11-19", "2026-11-21")
            got = answers(url, "2026-11-19", "2026-11-21", ledger=ledger, reports=tmp_path / "r1")
            assert got == expected
            assert len(rebuild_dask(locate(url, ledger), client)) == 4
    assert answers(url, "2026-11-19", "2026-11-21", ledger=ledger, reports=tmp_path / "r2") == expected
    _assert_clean(s3, bucket, url, ledger, run.rows)


def test_a_wrong_object_store_location_is_one_line(s3: S3Server, tmp_path: Path) -> None:
    """No ledger given, a bucket that does not exist, a ledger that is not
    the store's, a query before any ingest: one line each, nothing written."""
    bucket = s3.new_bucket()
    url = s3.url(bucket, "store")
    cases = [
        (["servers", "--store", url], "pass --ledger"),
        (["ingest", str(SAMPLES), "--store", s3.url("no-such-bucket", "s"), "--ledger", str(tmp_path / "a")],
         "bucket 'no-such-bucket' does not exist"),
        (["servers", "--store", url, "--ledger", str(tmp_path / "none.sqlite")], "no synack store"),
        (["ingest", "--store", "s3://", "--ledger", str(tmp_path / "b"), str(SAMPLES)], "names no bucket"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output
        assert message in result.output and "Traceback" not in result.output, result.output
    assert not _objects(s3, bucket)
    first = runner.invoke(app, ["ingest", str(SAMPLES), "--store", url, "--ledger", str(tmp_path / "one.sqlite")])
    assert first.exit_code == 0, first.output
    other = runner.invoke(app, ["ingest", str(SAMPLES), "--store", url, "--ledger", str(tmp_path / "two.sqlite")])
    assert other.exit_code != 0 and "holds files but the ledger" in other.output, other.output
    assert not (tmp_path / "two.sqlite").exists()
