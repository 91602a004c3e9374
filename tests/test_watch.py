"""`synack watch` against a simulated Zeek: bursts, rotation, kills, restarts."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synack.ingest.errors import StoreLocked
from synack.ingest.watch import WatchOptions, watch
from tests.conftest import store_table
from tests.zeek_sim import ZeekSim

ROOT = Path(__file__).resolve().parents[1]


def store_uids(store: Path) -> list[str]:
    """The uids in the store's record files. While a watcher runs, a listing of
    conn/ can name a chunk file that a compaction then retires: read again."""
    for _attempt in range(20):
        try:
            t = store_table(store)
            return sorted(t.column("uid").to_pylist()) if len(t) else []
        except FileNotFoundError:
            time.sleep(0.05)
    raise AssertionError("the store's files kept changing under the reader")


def assert_exactly_once(store: Path, sim: ZeekSim) -> None:
    uids = store_uids(store)
    assert len(uids) == len(set(uids)), "a record was counted twice"
    assert uids == sorted(sim.uids), f"missing {len(set(sim.uids) - set(uids))}, extra {len(set(uids) - set(sim.uids))}"


def once(logdir: Path, store: Path) -> None:
    watch(logdir, store, WatchOptions(once=True), stop=threading.Event(), log=lambda r: None)


def test_follows_bursts_and_rotations_in_a_thread(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs"), tmp_path / "store"
    stop = threading.Event()
    events: list[dict[str, object]] = []
    runner = threading.Thread(
        target=watch, args=(sim.logdir, store, WatchOptions(interval=0.4)),
        kwargs={"stop": stop, "log": events.append}, daemon=True,
    )  # fmt: skip
    runner.start()
    try:
        for _hour in range(4):
            for _ in range(3):
                sim.write(25)
                time.sleep(0.15)
            sim.rotate()
        sim.write(10, partial=False)
        deadline = time.monotonic() + 30  # a loaded machine is slower; a missed burst never appears
        while time.monotonic() < deadline and len(store_uids(store)) < len(sim.uids):
            time.sleep(0.2)  # the live log's last burst appears within the interval (plus a pass)
        assert len(store_uids(store)) == len(sim.uids)
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert_exactly_once(store, sim)
    assert any(e["event"] == "ingested" for e in events) and events[-1]["event"] == "stop"


def test_a_second_watcher_is_refused(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs"), tmp_path / "store"
    sim.write(3, partial=False)
    stop, started = threading.Event(), threading.Event()

    def log(record: dict[str, object]) -> None:
        if record["event"] == "start":
            started.set()

    runner = threading.Thread(target=watch, args=(sim.logdir, store, WatchOptions(interval=0.5)),
                              kwargs={"stop": stop, "log": log}, daemon=True)  # fmt: skip
    runner.start()
    assert started.wait(timeout=30)  # the first watcher holds the store
    try:
        with pytest.raises(StoreLocked, match="in use"):
            once(sim.logdir, store)
    finally:
        stop.set()
        runner.join(timeout=30)


def _spawn(logdir: Path, store: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from synack.cli import app; app()", "watch", str(logdir), "--store", str(store),
         "--interval", "0.3", "--chunk-bytes", "1500", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs", seed=7), tmp_path / "store"
    rng = random.Random(7)
    # How long a watcher takes to commit its first records on this machine now (start-up, imports,
    # backfill): the kills below land around it, so a loaded machine does not kill every watcher
    # before it works.
    sim.write(40)
    started, proc = time.monotonic(), _spawn(sim.logdir, store)
    while not store_uids(store) and time.monotonic() - started < 60:
        time.sleep(0.05)
    lag = max(time.monotonic() - started, 1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kills, progressed, interrupted = 0, 0, 0
    for _kill in range(22):
        before = len(store_uids(store))
        proc = _spawn(sim.logdir, store)
        for _ in range(rng.randrange(1, 4)):
            sim.write(rng.randrange(5, 60))
            if rng.random() < 0.25:
                sim.rotate()
            time.sleep(rng.uniform(0.0, 0.25))
        time.sleep(lag * rng.uniform(0.3, 1.5))  # start-up, backfill, mid-commit: wherever it is
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        interrupted += any((store / "conn").rglob(".*.tmp")) if (store / "conn").exists() else 0
        progressed += len(store_uids(store)) > before
    assert kills >= 20
    assert progressed >= 5  # kills landed while the watcher was working, not only at start-up
    print(f"{kills} kills, {progressed} with progress, {interrupted} left uncommitted files for recovery")
    sim.finish()
    once(sim.logdir, store)
    assert_exactly_once(store, sim)


@pytest.mark.parametrize("fault", ["files-written", "before-ledger-commit", "ledger-committed", "first-rename"])
def test_a_crash_between_any_two_steps_of_a_commit_is_recovered(tmp_path: Path, fault: str) -> None:
    sim, store = ZeekSim(tmp_path / "logs", seed=11), tmp_path / "store"
    for n in (1, 2, 4):
        sim.write(40)
        if n == 2:
            sim.rotate()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "crash_entry.py"), f"{fault}:{n}", "watch", str(sim.logdir),
             "--store", str(store), "--once", "--chunk-bytes", "1500"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.wait(timeout=60) == -signal.SIGKILL  # it died exactly at the fault point
    sim.finish()
    once(sim.logdir, store)
    assert_exactly_once(store, sim)
    assert not list((store / "conn").rglob(".*.tmp"))


def test_stopped_during_rotation_and_restarted_after(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs", seed=3), tmp_path / "store"
    proc = _spawn(sim.logdir, store)
    sim.write(40)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0  # finishes the chunk in hand, commits, exits 0
    sim.write(30)
    sim.rotate()  # while no watcher runs
    sim.write(20, partial=False)
    once(sim.logdir, store)
    assert_exactly_once(store, sim)


def test_late_start_on_a_day_of_archives(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs", seed=5), tmp_path / "store"
    for _ in range(24):
        sim.write(30)
        sim.rotate()
    sim.write(10, partial=False)
    once(sim.logdir, store)
    assert_exactly_once(store, sim)
    assert len(list((sim.logdir).glob("*/conn.*.log.gz"))) == 24
    started = time.monotonic()
    once(sim.logdir, store)  # nothing new: the ledger skips every file unread
    assert time.monotonic() - started < 5
    assert_exactly_once(store, sim)


def test_watch_cli_once_and_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synack.cli import app

    sim = ZeekSim(tmp_path / "logs")
    sim.write(5, partial=False)
    runner = CliRunner()
    result = runner.invoke(app, ["watch", str(sim.logdir), "--store", str(tmp_path / "s"), "--once"])
    assert result.exit_code == 0, result.output
    assert '"event": "ingested"' in result.stderr and '"merges": ' in result.stderr
    assert len(store_uids(tmp_path / "s")) == 5
    bad = runner.invoke(app, ["watch", str(tmp_path / "nope"), "--store", str(tmp_path / "s")])
    assert bad.exit_code == 2 and "not a directory" in bad.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX system")
def test_idle_watcher_uses_almost_no_cpu(tmp_path: Path) -> None:
    sim, store = ZeekSim(tmp_path / "logs"), tmp_path / "store"
    sim.write(5, partial=False)
    proc = _spawn(sim.logdir, store)
    try:
        deadline = time.monotonic() + 60
        while len(store_uids(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)  # start-up and backfill
        time.sleep(1.0)
        before = _cpu_seconds(proc.pid)
        time.sleep(3.0)
        assert _cpu_seconds(proc.pid) - before < 0.3  # events, not busy polling
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_an_idle_watcher_within_two_seconds_at_any_interval(tmp_path: Path, sig: int) -> None:
    """Before, the idle wait woke only at the next rescan (10 x --interval)."""
    sim, store = ZeekSim(tmp_path / "logs"), tmp_path / "store"
    sim.write(5, partial=False)
    proc = _spawn(sim.logdir, store, "--interval", "600")
    try:
        deadline = time.monotonic() + 60
        while len(store_uids(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)  # start-up and backfill
        time.sleep(1.0)  # now idle, in the wait for a change
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert time.monotonic() - sent < 2.0
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_log_moved_between_listing_and_reading_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI failure of stop 18: the live log was renamed after it was identified
    and before it was opened; the pass raised FileNotFoundError and watch died."""
    from synack.ingest import conn_ingest

    sim, store = ZeekSim(tmp_path / "logs"), tmp_path / "store"
    sim.write(20, partial=False)
    aside = tmp_path / "aside.log"
    real_identify = conn_ingest.identify

    def identify_then_move(path: Path) -> object:
        source = real_identify(path)
        if path == sim.live and path.exists():
            path.rename(aside)  # the first half of a rotation
        return source

    monkeypatch.setattr(conn_ingest, "identify", identify_then_move)
    events: list[dict[str, object]] = []
    watch(sim.logdir, store, WatchOptions(once=True), stop=threading.Event(), log=events.append)
    assert aside.exists() and not any(e["event"] == "error" for e in events)
    monkeypatch.setattr(conn_ingest, "identify", real_identify)
    aside.rename(sim.live)
    once(sim.logdir, store)  # the next pass reads it
    assert_exactly_once(store, sim)
