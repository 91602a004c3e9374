"""Shared fixtures: the reference corpora (skipped when absent) and log builders."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from hypothesis import settings

from synack.ingest.log_source import identify, read_chunks
from synack.ingest.schema import ZEEK_CONN_FIELDS
from synack.samples.generate import zeek_header

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ZEEK_CORPUS = SHARED / "zeek-corpus"
SHARED_ZEEK_BIN = SHARED / "zeek" / "bin"

# Property tests draw new random examples on a developer's machine (every run
# explores), and in CI the same examples every run (a seed per test), so a
# submission is judged on its own code, not on the luck of the draw. Loaded
# before the test modules, whose @settings inherit it.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

CONN_HEADER_FIELDS = list(ZEEK_CONN_FIELDS[:-1])  # without ip_proto, as older Zeeks write it


@pytest.fixture
def zeek_corpus() -> Path:
    if not ZEEK_CORPUS.is_dir():
        pytest.skip("../shared/zeek-corpus is not present")
    return ZEEK_CORPUS


@pytest.fixture(scope="session")
def zeek_env() -> dict[str, str]:
    """The environment to run a real Zeek with: the user's `zeek` on PATH, else
    ../shared/zeek/bin. Skips where neither runs, except in CI with
    ../shared/zeek present, where a Zeek that does not start is a failure."""
    env = dict(os.environ)
    if shutil.which("zeek") is None and SHARED_ZEEK_BIN.is_dir():
        env["PATH"] = f"{SHARED_ZEEK_BIN}{os.pathsep}{env.get('PATH', '')}"
    zeek = shutil.which("zeek", path=env["PATH"])
    problem = "no zeek on PATH and no ../shared/zeek" if zeek is None else ""
    if zeek is not None:
        try:
            run = subprocess.run([zeek, "--version"], env=env, capture_output=True, text=True, timeout=60)
            problem = "" if run.returncode == 0 else f"zeek does not start: {run.stderr.strip()[-300:]}"
        except OSError as err:
            problem = f"zeek does not start: {err}"
    if problem and os.environ.get("CI") and SHARED_ZEEK_BIN.is_dir():
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    return env


def conn_header(fields: list[tuple[str, str]] | None = None, opened: str = "2026-11-21-10-00-00") -> str:
    """A Zeek ASCII conn.log header block."""
    return zeek_header("conn", fields or CONN_HEADER_FIELDS, opened)


def peer_of(rng: random.Random, hosts: list[str], host: str) -> str:
    """A random host of `hosts` of the same address family as `host`: a connection's two hosts are of one
    (a line mixing them is set aside)."""
    return rng.choice([h for h in hosts if (":" in h) == (":" in host)])


def conn_line(
    uid: str,
    *,
    ts: float = 1795000000.0,
    orig: str = "10.0.0.1",
    orig_p: int = 40000,
    resp: str = "10.0.0.2",
    resp_p: int = 80,
    proto: str = "tcp",
    state: str = "SF",
    history: str = "ShADadFf",
    resp_pkts: str = "5",
) -> str:
    """One data line of the CONN_HEADER_FIELDS layout."""
    return (
        "\t".join(
            [
                f"{ts:.6f}",
                uid,
                orig,
                str(orig_p),
                resp,
                str(resp_p),
                proto,
                "-",
                "1.000000",
                "100",
                "200",
                state,
                "T",
                "T",
                "0",
                history,
                "5",
                "300",
                resp_pkts,
                "400",
                "(empty)",
            ]
        )
        + "\n"
    )


def write_log(path: Path, text: str, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


@pytest.fixture
def make_conn_log(tmp_path: Path) -> Callable[..., Path]:
    """Write a conn.log of given lines (optionally closed, gzipped)."""

    def make(
        name: str,
        lines: Iterable[str],
        closed: bool = True,
        compress: bool = False,
        opened: str = "2026-11-21-10-00-00",
    ) -> Path:
        text = conn_header(opened=opened) + "".join(lines) + ("#close\t2026-11-21-11-00-00\n" if closed else "")
        return write_log(tmp_path / name, text, compress)

    return make


def store_table(store: Path) -> pa.Table:
    """Every record in a store's conn/ partitions."""
    conn = store / "conn"
    if not conn.exists():
        return pa.table({})
    return ds.dataset(conn, format="parquet", partitioning="hive").to_table()


def read_records(path: Path) -> pa.Table:
    """The normalized records of one conn log, read with synack's own reader; no line may be quarantined."""
    source = identify(path)
    assert source is not None
    chunks = list(read_chunks(source))
    quarantined = [q for c in chunks for q in c.quarantined]
    assert quarantined == [], quarantined[:3]
    tables = [c.table for c in chunks if c.table is not None]
    return pa.concat_tables(tables) if tables else pa.table({})


def run_synack(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `synack ARGS` (the entry point's code, cli.main) in a child process."""
    code = "import sys; from synack import cli; sys.argv[0] = 'synack'; cli.main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def eve_flow_event() -> dict[str, Any]:
    """One Suricata eve.json flow event of an answered TCP connection (a fresh copy to change)."""
    return {
        "timestamp": "2026-11-21T10:00:00.000000+0000", "flow_id": 1, "event_type": "flow", "src_ip": "10.0.0.1",
        "src_port": 40000, "dest_ip": "10.0.0.2", "dest_port": 443, "proto": "TCP", "app_proto": "tls",
        "host": "sensorA",
        "flow": {"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 100, "bytes_toclient": 200,
                 "start": "2026-11-21T10:00:00.000000+0000", "end": "2026-11-21T10:00:01.000000+0000",
                 "state": "closed", "reason": "timeout", "alerted": False},
        "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "syn": True},
    }  # fmt: skip


def without_rollups(store: Path, copy: Path) -> Path:
    """A copy of `store` without roll-ups or years' sightings: every answer a plain merge of the days' partials."""
    shutil.copytree(store, copy)
    db = sqlite3.connect(copy / "ledger.sqlite")
    db.execute("DELETE FROM rollups")
    db.commit()
    db.close()
    return copy
