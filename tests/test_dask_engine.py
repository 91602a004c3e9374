"""The Dask engine (ingest.dask_engine) on a real local cluster of worker
processes: the stores it builds answer every query exactly as the local
engine's do, a worker killed mid-task loses and doubles nothing, and asking
for it without Dask is one line naming the extra.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.store import Store
from tests.engine_answers import answers, generated_logs

distributed = pytest.importorskip("dask.distributed")
from synack.ingest.dask_engine import ingest_dask, rebuild_dask  # noqa: E402

#: End to end on real processes: `python -m pytest -m 'not slow'` leaves them out (CI runs them).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"
runner = CliRunner()
#: Small chunks, so every file is several chunks (both engines cut them alike).
CHUNK = 192 << 10


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.mark.parametrize("which", ["samples", "zeek-corpus", "generated"])
def test_the_dask_engine_answers_exactly_as_the_local_one(which: str, client: Any, tmp_path: Path) -> None:
    if which == "zeek-corpus":
        corpus = ROOT.parent / "shared" / "zeek-corpus"
        if not corpus.is_dir():
            pytest.skip("../shared/zeek-corpus is not present")
        logs, since, until = sorted(corpus.glob("*/zeek8-conn.*")), "2000-01-01", "2030-01-01"
    elif which == "samples":
        logs, since, until = [SAMPLES], "2026-11-19", "2026-11-22"
    else:
        logs, since, until = [generated_logs(tmp_path / "logs")], "2026-11-19", "2026-11-21"
    local = ingest_paths(logs, tmp_path / "local", chunk_bytes=CHUNK)
    with Store.open(tmp_path / "dask") as store:
        distributed_run = ingest_dask(store, logs, client, chunk_bytes=CHUNK)
    assert distributed_run.rows == local.rows > 0 and distributed_run.quarantined == local.quarantined
    if which == "generated":
        assert distributed_run.merges > 0  # partials were merged by tasks on the workers
    assert sorted(f.status for f in distributed_run.files) == sorted(f.status for f in local.files)
    expected = answers(tmp_path / "local", since, until)
    assert all(expected[q].count("\n") > 1 for q in ("servers", "clients", "new-ports"))  # nothing compared empty
    assert answers(tmp_path / "dask", since, until) == expected
    with Store.open(tmp_path / "dask") as store:  # again: nothing new, however the work is split
        assert ingest_dask(store, logs, client, chunk_bytes=CHUNK).rows == 0


def test_archives_and_their_concatenation_in_one_round_are_read_once(client: Any, tmp_path: Path) -> None:
    """Two workers read the same header blocks at once (the archives and a file concatenating them): the
    driver commits the first and has the other read again in the next round, its blocks already read skipped."""
    from tests.test_log_blocks import _archive_text, _stored, _uids

    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(3):
        (logs / f"conn.{n}.log").write_text(_archive_text(n))
    (logs / "conn.joined.log").write_text("".join(_archive_text(n) for n in (3, 0, 1, 2)))  # a source of its own
    with Store.open(tmp_path / "store") as store:
        run = ingest_dask(store, [logs], client, chunk_bytes=CHUNK)
    assert run.rows == sum(7 + 3 * n for n in range(4))
    assert _stored(tmp_path / "store") == _uids([0, 1, 2, 3])


def test_rebuild_on_the_cluster_changes_no_answer(client: Any, tmp_path: Path) -> None:
    """`synack rebuild --engine dask`: a task per day recomputes its partials
    from the records; every answer stays as the local engine's."""
    logs = generated_logs(tmp_path / "logs")
    ingest_paths([logs], tmp_path / "local", chunk_bytes=CHUNK)
    ingest_paths([logs], tmp_path / "dask", chunk_bytes=CHUNK)
    assert sorted(rebuild_dask(tmp_path / "dask", client)) == ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"]
    assert answers(tmp_path / "dask", "2026-11-19", "2026-11-21") == answers(
        tmp_path / "local", "2026-11-19", "2026-11-21"
    )
    check = runner.invoke(app, ["check", "--store", str(tmp_path / "dask")])
    assert check.exit_code == 0, check.output


def test_a_worker_killed_mid_task_loses_and_doubles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first task kills its worker process (SIGKILL, as the OOM killer
    would); Dask runs it again on a fresh worker, and the store equals the
    local engine's."""
    logs = generated_logs(tmp_path / "logs")
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("SYNACK_DASK_FAULT", str(marker))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c, Store.open(tmp_path / "dask") as store:
            run = ingest_dask(store, [logs], c, chunk_bytes=CHUNK)
    assert marker.exists()  # a worker did die
    monkeypatch.delenv("SYNACK_DASK_FAULT")
    local = ingest_paths([logs], tmp_path / "local", chunk_bytes=CHUNK)
    assert run.rows == local.rows
    assert answers(tmp_path / "dask", "2026-11-19", "2026-11-21") == answers(
        tmp_path / "local", "2026-11-19", "2026-11-21"
    )
    assert not list((tmp_path / "dask").rglob(".*.tmp"))  # nothing half-written is left
    check = runner.invoke(app, ["check", "--store", str(tmp_path / "dask")])
    assert check.exit_code == 0, check.output


def test_the_cli_runs_the_engine_and_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--engine dask --workers 1 ingests; an unknown engine, or Dask missing, is one line naming the fix."""
    result = runner.invoke(app, ["ingest", str(SAMPLES), "--store", str(tmp_path / "s"), "--engine", "dask",
                                 "--workers", "1", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "919 rows" in result.output
    result = runner.invoke(app, ["ingest", str(SAMPLES), "--store", str(tmp_path / "t"), "--engine", "spark"])
    assert result.exit_code == 2 and result.output.strip() == "error: unknown engine 'spark': choose local or dask"
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if not installed
    monkeypatch.setenv("SYNACK_ENGINE", "dask")
    result = runner.invoke(app, ["ingest", str(SAMPLES), "--store", str(tmp_path / "u")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: the dask engine needs Dask: pip install 'synack[dask]'"


def test_a_relative_store_works_and_the_local_cluster_listens_on_loopback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a relative --store (the default ./synack-store) failed with "internal error (ValueError: ...
    is not in the subpath of ...)", and the dashboard of the run's local cluster listened on 0.0.0.0."""
    from synack.ingest.dask_engine import dask_client

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["ingest", str(SAMPLES), "--store", "rel-store", "--engine", "dask",
                                 "--workers", "1", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "919 rows" in result.output and (tmp_path / "rel-store" / "ledger.sqlite").exists()
    with dask_client(None, 1) as client:
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        hosts = client.run_on_scheduler(
            lambda dask_scheduler: sorted({s.getsockname()[0] for s in dask_scheduler.http_server._sockets.values()})
        )
        assert hosts == ["127.0.0.1"]
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
