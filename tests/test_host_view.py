"""`synack host ADDR` and Inventory.host: one host's view, checked by hand with zeek-cut."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import Inventory
from synack.samples.generate import OUT
from tests.conftest import SHARED_ZEEK_BIN

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "store"
    ingest_paths([OUT], path)
    return path


def zeek_cut_rows(*fields: str) -> list[list[str]]:
    """`fields` of every conn log of the samples, as zeek-cut prints them."""
    cut = shutil.which("zeek-cut") or (str(SHARED_ZEEK_BIN / "zeek-cut") if SHARED_ZEEK_BIN.is_dir() else None)
    if cut is None:
        pytest.skip("zeek-cut is not on PATH and ../shared/zeek is absent")
    rows = []
    for log in sorted(OUT.rglob("conn*.log*")):
        data = gzip.decompress(log.read_bytes()) if log.suffix == ".gz" else log.read_bytes()
        out = subprocess.run([cut, *fields], input=data, capture_output=True, check=True).stdout.decode()
        rows += [line.split("\t") for line in out.splitlines() if line]
    return rows


@pytest.mark.parametrize("host", ["10.1.0.11", "10.1.0.10"])
def test_a_host_view_answers_what_zeek_cut_gives(store: Path, host: str) -> None:
    rows = zeek_cut_rows("id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "history", "resp_pkts")
    served = {
        (int(rp), proto)
        for oh, op, rh, rp, proto, hist, pkts in rows
        if rh == host and ((proto == "tcp" and "h" in hist) or (proto == "udp" and pkts not in ("0", "-")))
    }
    served |= {
        (int(op), proto)
        for oh, op, rh, rp, proto, hist, pkts in rows
        if oh == host and proto == "tcp" and "H" in hist and "h" not in hist
    }
    talks_to = {
        (rh, int(rp), proto)
        for oh, op, rh, rp, proto, hist, pkts in rows
        if oh == host and ((proto == "tcp" and "h" in hist) or (proto == "udp" and pkts not in ("0", "-")))
    }
    view = Inventory(store, as_of="newest").host(host)
    assert view.address == host and served, "the samples' host serves something"
    assert set(zip(view.tables["served"]["server_p"], view.tables["served"]["proto"])) == served
    pairs = view.tables["connects_to"]
    assert set(zip(pairs["server_h"], pairs["server_p"], pairs["proto"])) == talks_to
    assert view.sensors and all(view.tables["served"]["server_h"] == host)


def test_the_host_command_prints_tables_json_and_a_page(store: Path, tmp_path: Path) -> None:
    table = runner.invoke(app, ["host", "10.1.0.11", "--store", str(store), "--as-of", "newest"])
    assert table.exit_code == 0, table.output
    assert "Ports it served" in table.stdout and "8443/tcp" in table.stdout
    as_json = runner.invoke(app, ["host", "10.1.0.11", "--store", str(store), "--as-of", "newest", "-f", "json"])
    doc = json.loads(as_json.stdout)
    assert doc["host"] == "10.1.0.11" and {r["server_p"] for r in doc["served"]} >= {8443}
    assert doc == Inventory(store, as_of="newest").host("10.1.0.11").to_json()  # the CLI is the library
    page = tmp_path / "host.html"
    done = runner.invoke(app, ["host", "10.1.0.11", "--store", str(store), "--as-of", "newest", "-f", "html",
                               "-o", str(page)])  # fmt: skip
    assert done.exit_code == 0 and "<h1>Host 10.1.0.11</h1>" in page.read_text() and "<script" not in page.read_text()
    bad = runner.invoke(app, ["host", "not-an-address", "--store", str(store)])
    assert bad.exit_code == 2 and "is not an IP address" in bad.stderr


def test_filters_are_the_same_on_every_query_and_in_the_cli(store: Path) -> None:
    inv = Inventory(store, nets="all", as_of="newest")
    everything = inv.servers()
    rdp = inv.servers(port="3389")
    assert len(rdp) and set(rdp["server_p"]) == {3389} and len(rdp) == (everything["server_p"] == 3389).sum()
    net = inv.servers(host="10.1.0.0/24", port=["20-30", "443"], proto="tcp", sort="connections", limit=3)
    assert len(net) <= 3 and list(net["connections"]) == sorted(net["connections"])
    assert set(net["server_p"]) <= set(range(20, 31)) | {443}
    ssh = inv.servers(service="ssh")
    assert len(ssh) and all("ssh" in (s.split(",") + [n]) for s, n in zip(ssh["services"], ssh["port_name"]))
    clients = inv.clients(host="10.1.0.0/16")
    assert len(clients) and all(c.startswith("10.1.") for c in clients["client_h"])
    cli = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all", "--as-of", "newest", "--port", "3389",
                              "-f", "json"])  # fmt: skip
    assert [r["server_h"] for r in json.loads(cli.stdout)] == list(rdp["server_h"])
    assert rdp.attrs["nets"] == "all" and rdp.attrs["as_of"] == inv.as_of
    for bad, says in ((["--port", "70000"], "0-65535"), (["--host", "nope"], "neither an IP"),
                      (["--sort", "nope"], "no such column")):  # fmt: skip
        result = runner.invoke(app, ["servers", "--store", str(store), *bad])
        assert result.exit_code == 2 and says in result.stderr, result.output


@pytest.mark.parametrize(
    ("command", "method"),
    [
        (["servers", "--since", "2026-11-20"], lambda inv: inv.servers("2026-11-20")),
        (["clients"], lambda inv: inv.clients()),
        (["clients", "--detail", "--port", "443"], lambda inv: inv.client_pairs(port=443)),
        (["closed"], lambda inv: inv.closed()),
        (["new-ports", "--since", "2026-11-21"], lambda inv: inv.new_servers("2026-11-21")),
        (["new-ports", "--since", "2026-11-21", "--clients"], lambda inv: inv.new_clients("2026-11-21")),
        (["gone-ports", "--idle-days", "1"], lambda inv: inv.gone_servers(idle_days=1)),
        (["notices"], lambda inv: inv.notices()),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_every_query_command_answers_what_its_inventory_method_does(
    store: Path, command: list[str], method: Callable[[Inventory], pd.DataFrame]
) -> None:
    """One API: the CLI prints exactly the rows of the Inventory method, as JSON."""
    from synack.inventory import export

    result = runner.invoke(app, [*command, "--store", str(store), "--nets", "all", "--as-of", "newest", "-f", "json"])
    assert result.exit_code == 0, result.output
    expected = export.records(method(Inventory(store, nets="all", as_of="newest")))
    assert json.loads(result.stdout) == json.loads(json.dumps(expected))
