"""The weight of a range's rows bounded from the files' footers (inventory.row_bounds).

Before: every banded question read the whole range once to weigh it, and
nearly always found one band: a third of `servers`, `new-ports` and
`gone-ports` on a year of 350,000 records a day, and 1.2 s of its report.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pyarrow.compute as pc
import pytest

from synack.ingest import snapshot as snapshot_module
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.errors import SynackError
from synack.ingest.snapshot import take_snapshot
from synack.ingest.store_files import StoreFS, locate
from synack.inventory import Inventory, address_bands
from synack.inventory.dailies import SERVERS, tables_in_range
from synack.inventory.row_bounds import weight_bound
from tests.conftest import conn_header, conn_line

START = 1795000000.0
PRIVATE = [ipaddress.ip_network("10.0.0.0/8")]


def _store(tmp_path: Path) -> Path:
    """One day: 3,000 public servers and 3,000 in 10/8 (server rows in
    address order fill several row groups of each kind), a closed port of
    each, and a few clients each."""
    lines = []
    for i in range(3000):
        for host in (f"10.9.{i // 250}.{i % 250 + 1}", f"8.8.{i // 250}.{i % 250 + 1}"):
            for c in range(2):
                lines.append(conn_line(f"C{host}x{c}", ts=START + i + c * 0.1, orig=f"10.1.0.{c + 1}", resp=host,
                                       resp_p=443))  # fmt: skip
            lines.append(conn_line(f"C{host}r", ts=START + i + 0.5, orig="10.1.0.9", resp=host, resp_p=25,
                                   history="Sr"))  # fmt: skip
    lines.sort(key=lambda line: float(line.split("\t", 1)[0]))
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines))
    store = tmp_path / "store"
    ingest_paths([log], store)
    return store


def _exact(store: Path, states: tuple[str, ...], nets: list | None) -> tuple[int, int]:
    """(rows, client-list entries) of the range's server rows in `states` and `nets`, read."""
    where = pc.field("state").isin(list(states))
    if nets is not None:
        where = where & (pc.field("server_v4") >= pc.scalar(int(nets[0].network_address)).cast("uint32"))
        where = where & (pc.field("server_v4") <= pc.scalar(int(nets[0].broadcast_address)).cast("uint32"))
    rows = entries = 0
    for table in tables_in_range(take_snapshot(locate(store)), SERVERS, None, None, where=where):
        rows += len(table)
        entries += pc.sum(pc.list_value_length(table.column("clients_v4"))).as_py() or 0
    return rows, entries


def test_the_bound_holds_the_rows_and_leaves_out_what_statistics_rule_out(tmp_path: Path) -> None:
    store = _store(tmp_path)
    snap = take_snapshot(locate(store))
    everything = weight_bound(snap, SERVERS, None, None, columns=["server_v4"], states=("closed", "served"),
                              nets=None, number="server_v4", row_weight=1.0)  # fmt: skip
    assert everything == _exact(store, ("closed", "served"), None)[0] == 12000  # no statistics rule a row out
    weighed = {}
    for states, nets in [(("closed", "served"), None), (("served",), None), (("served",), PRIVATE),
                         (("closed",), PRIVATE)]:  # fmt: skip
        rows, entries = _exact(store, states, nets)
        bound = weight_bound(snap, SERVERS, None, None, columns=["server_v4"], states=states, nets=nets,
                             number="server_v4", row_weight=1.0, list_weight=0.5)  # fmt: skip
        assert bound is not None and rows + entries * 0.5 <= bound, (states, nets)
        weighed[states, None if nets is None else "10/8"] = bound
    whole = weighed[("closed", "served"), None]
    # Row groups of another state, or of servers outside 10/8 only, are left out.
    assert weighed[("served",), None] < whole * 0.95
    assert weighed[("served",), "10/8"] < whole * 0.6 and weighed[("closed",), "10/8"] < whole * 0.6


def test_bands_weighed_from_the_footers_read_no_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One band found from the footers reads no aggregate rows to weigh
    them; a bound that does not fit still reads them, and bands them."""
    store = _store(tmp_path)
    reads: list[int] = []
    real = address_bands.tables_in_range
    monkeypatch.setattr(address_bands, "tables_in_range", lambda *a, **k: reads.append(1) or real(*a, **k))
    monkeypatch.setattr(address_bands, "ANSWER_ROWS", 5900)  # the ledger's 12,000 rows do not fit; 10/8's do
    inv = Inventory(store, nets="10.0.0.0/8")
    assert inv.bands("servers") == [None] and reads == []
    everyone = Inventory(store, nets="all")
    assert len(everyone.bands("servers")) == 2 and reads == [1]  # 6,000 served ports: read, then two bands
    assert len(everyone.servers()) == 6000


def test_a_footer_is_verified_and_read_once_with_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A footer comes from the file's verified bytes, which the read that
    follows reuses even when the file is too large to keep; a damaged file
    is refused in one line."""
    store = _store(tmp_path)
    monkeypatch.setattr(snapshot_module, "VERIFIED_CACHE_BYTES", 1)  # no file is kept: each is lent to its read
    reads: list[str] = []
    real = StoreFS.verified_bytes
    monkeypatch.setattr(
        StoreFS, "verified_bytes", lambda self, path, stamp: reads.append(path) or real(self, path, stamp)
    )
    snap = take_snapshot(locate(store))
    partial = next(p for p in snap.partials if p.kind_rows(SERVERS))
    rel, stamp, rows = snap.partial_file(SERVERS, partial), partial.stamp(SERVERS), partial.kind_rows(SERVERS)
    footer = snap.footer(rel, stamp, rows)
    assert footer.num_rows == rows and snap.footer(rel, stamp, rows) is footer
    assert snap.read(rel, stamp, rows).num_rows == rows and len(reads) == 1
    snap.read(rel, stamp, rows, columns=["server_v4"])
    assert len(reads) == 2  # lent once, then read as any file too large to keep
    data = (store / rel).read_bytes()
    (store / rel).write_bytes(data[:-100] + b"x" * 100)
    with pytest.raises(SynackError, match="damaged") as err:
        take_snapshot(locate(store)).footer(rel, stamp, rows)
    assert "\n" not in str(err.value)
