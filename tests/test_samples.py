"""The bundled samples: deterministic, and the planted facts come out of an ingest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.samples.generate import OUT, PLANTED, generate
from tests import shorthands as inventory
from tests.conftest import store_table


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("samples") / "store"
    summary = ingest_paths([OUT], store)
    assert summary.errors == [] and summary.quarantined == 0
    return store


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generator_reproduces_the_committed_samples(tmp_path: Path) -> None:
    generate(tmp_path / "zeek")
    assert digest(tmp_path / "zeek") == digest(OUT)


def test_sample_layout_is_zeekctl_like() -> None:
    names = {str(p.relative_to(OUT)) for p in OUT.rglob("*") if p.is_file()}
    assert "current/conn.log" in names
    assert any(n.startswith("2026-11-18/conn.") and n.endswith(".log.gz") for n in names)
    assert any(n.startswith("2026-11-19/dns.") for n in names)


def test_reingesting_the_samples_adds_no_row(sample_store: Path) -> None:
    before = store_table(sample_store).num_rows
    again = ingest_paths([OUT], sample_store)
    assert again.rows == 0 and again.quarantined == 0
    assert store_table(sample_store).num_rows == before
    assert len(set(store_table(sample_store).column("uid").to_pylist())) == before


def served(store: Path) -> set[tuple[str, str, int]]:
    df = inventory.servers(store, nets="all")
    return set(zip(df.server_h, df.proto, df.server_p.astype(int)))


def test_planted_servers_and_nothing_else(sample_store: Path) -> None:
    assert served(sample_store) == PLANTED["tcp_servers"] | PLANTED["udp_servers"]


def test_scan_midstream_and_closed_ports_are_not_servers(sample_store: Path) -> None:
    t = store_table(sample_store).to_pandas()
    scan = t[(t.orig_h == PLANTED["scan_source"]) & (t.resp_h == PLANTED["scan_target"])]
    assert len(scan) >= 60 and set(scan.outcome) == {"unanswered"} and scan.server_h.isna().all()
    mid_h, _, mid_p = PLANTED["midstream_only"]
    mid = t[(t.resp_h == mid_h) & (t.resp_p == mid_p)]
    assert len(mid) > 0 and set(mid.outcome) == {"midstream"}
    rej = t[t.outcome == "rejected"]
    assert set(zip(rej.server_h, rej.proto, rej.server_p.astype(int))) == PLANTED["closed"]


def test_flipped_and_originator_servers(sample_store: Path) -> None:
    t = store_table(sample_store).to_pandas()
    flipped = t[t.history.astype(str).str.startswith("^")]
    assert len(flipped) > 0
    assert set(zip(flipped.server_h, flipped.server_p.astype(int))) == {PLANTED["flipped"][::2]}
    orig = t[t.history == "HcADF"]
    assert len(orig) > 0
    assert (orig.server_h.astype(str) == orig.orig_h.astype(str)).all()
    assert (orig.server_h.astype(str) == PLANTED["orig_is_server"][0]).all()


def test_banners_are_bytes(sample_store: Path) -> None:
    df = inventory.servers(sample_store, nets="all")
    for (host, port), banner in PLANTED["banners"].items():
        (reply,) = df[(df.server_h == host) & (df.server_p == port)].server_reply
        assert reply == banner


def test_new_server_port_on_the_last_day(sample_store: Path) -> None:
    last = pd.Timestamp(PLANTED["last_day"]).date()
    new = inventory.new_servers(sample_store, last, last + pd.Timedelta(days=1))
    assert set(zip(new.server_h, new.proto, new.server_p.astype(int))) == PLANTED["new_on_last_day"]
    assert (new.sensors == "edge-1").all()


def test_json_archive_and_ipv6_are_in(sample_store: Path) -> None:
    t = store_table(sample_store)
    sensors = set(t.column("sensor").cast(pa.string()).to_pylist())
    assert sensors == {"edge-1", "core-2"}
    assert "fd00:10::5" in set(t.column("server_h").cast(pa.string()).to_pylist())
