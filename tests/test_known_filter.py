"""The known server ports as a Bloom filter (export-known --filter).

Before: notice.zeek could only read the baseline as an Input-framework
table: 1,000,000 known ports cost each Zeek process 1.2 GB and seconds to
load (bench/bench_notice_baseline.py). The filter holds them in about
3.6 MB; Zeek's side of it is tested on a real Zeek in test_sensor_notices.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import Inventory
from synack.inventory.known_filter import (
    FALSE_POSITIVE_RATE,
    FilterShape,
    filter_bytes,
    holds,
    port_texts,
    read_filter,
    write_filter,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _servers(n: int, net: str = "10.1") -> pd.DataFrame:
    return pd.DataFrame({"server_h": [f"{net}.{i // 256 % 256}.{i % 256}" for i in range(n)],
                         "proto": ["tcp", "udp"] * (n // 2) + ["tcp"] * (n % 2),
                         "server_p": [22 + i // 65536 for i in range(n)]})  # fmt: skip


def test_every_known_port_is_held_and_others_rarely(tmp_path: Path) -> None:
    """Every port written is held (no false negative: no notice for a known
    port); of 1,000,000 other ports, about FALSE_POSITIVE_RATE are taken
    for known, at every size (a filter of a few ports included)."""
    others = _servers(1_000_000, "10.200")
    others_texts = port_texts(others["server_h"], others["proto"], others["server_p"])
    for n in (3, 1_000, 200_000):
        servers = _servers(n)
        with open(tmp_path / f"{n}.filter", "w") as f:
            assert write_filter(f, servers) == n
        read = read_filter(tmp_path / f"{n}.filter")
        assert read is not None and read.entries == n and read.shape == FilterShape.for_entries(n)
        texts = port_texts(servers["server_h"], servers["proto"], servers["server_p"])
        assert holds(read.data, read.shape, texts).all()
        assert holds(read.data, read.shape, others_texts).sum() <= 10 * FALSE_POSITIVE_RATE * len(others_texts)


def test_a_port_is_hashed_as_zeek_prints_it() -> None:
    """Zeek prints an IPv4-mapped IPv6 address as IPv4 and knows no zone id:
    the filter hashes the same text, so such a stored address is found."""
    assert port_texts(["::ffff:10.1.0.1", "2001:DB8:0::1", "fe80::1%eth0", "10.1.0.1"], ["tcp"] * 4, [22] * 4) == [
        b"10.1.0.1/tcp/22", b"2001:db8::1/tcp/22", b"fe80::1/tcp/22", b"10.1.0.1/tcp/22"]  # fmt: skip
    shape = FilterShape.for_entries(1)
    data = filter_bytes(port_texts(["::ffff:10.1.0.1"], ["tcp"], [22]), shape)
    assert holds(data, shape, port_texts(["10.1.0.1"], ["tcp"], [22])).all()
    assert not holds(data, shape, port_texts(["10.1.0.1"], ["udp"], [22])).any()


def test_export_known_with_a_filter(tmp_path: Path) -> None:
    """--filter: the server ports go to the filter, the table keeps only the
    allowlist's ranges; the guard against an emptied baseline counts the
    filter's ports (a narrower export is refused, the files untouched)."""
    store = tmp_path / "store"
    ingest_paths([ROOT / "samples" / "zeek"], store)
    allow = tmp_path / "allow.txt"
    allow.write_text("10.9.0.0/16 any 53\n")
    known, bloom = tmp_path / "known.tsv", tmp_path / "known.filter"
    base = ["export-known", "--store", str(store), "-o", str(known), "--filter", str(bloom), "--allow", str(allow)]
    result = runner.invoke(app, [*base, "--nets", "all"])
    assert result.exit_code == 0, result.output
    servers = Inventory(store, nets="all").servers()
    assert f"{len(servers)} known server ports and 1 expected port ranges written to {bloom} (a Bloom filter)" in (
        result.output)  # fmt: skip
    rows = [line for line in known.read_text().splitlines() if not line.startswith("#")]
    assert rows == ["10.9.0.0/16\tany\t53\t53\t-\texpected"]
    read = read_filter(bloom)
    assert read is not None and read.entries == len(servers)
    texts = port_texts(servers["server_h"].astype(str), servers["proto"].astype(str), servers["server_p"])
    assert holds(read.data, read.shape, texts).all()

    before = (known.read_bytes(), bloom.read_bytes())
    narrow = runner.invoke(app, [*base, "--nets", "10.1.0.10/32"])
    assert narrow.exit_code == 2
    assert f"the current one {len(servers):,}" in narrow.output
    assert (known.read_bytes(), bloom.read_bytes()) == before


def test_watch_keeps_the_filter_current(tmp_path: Path) -> None:
    """watch --export-known --export-filter writes both after its pass;
    --export-filter alone is one error line (it needs the table)."""
    store, known, bloom = tmp_path / "store", tmp_path / "known.tsv", tmp_path / "known.filter"
    alone = runner.invoke(app, ["watch", str(ROOT / "samples" / "zeek"), "--once", "--store", str(store),
                                "--export-filter", str(bloom)])  # fmt: skip
    assert alone.exit_code == 2 and "needs --export-known" in alone.output and not bloom.exists()
    done = runner.invoke(app, ["watch", str(ROOT / "samples" / "zeek"), "--once", "--store", str(store), "--nets",
                               "all", "--export-known", str(known), "--export-filter", str(bloom)])  # fmt: skip
    assert done.exit_code == 0, done.output
    read = read_filter(bloom)
    assert read is not None and read.entries == len(Inventory(store, nets="all").servers()) > 0
    assert not [line for line in known.read_text().splitlines() if line.endswith("\tknown")]
