"""Suricata EVE input: real eve.json files, suricata-verify expectations, mixed stores."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.log_source import SURICATA_EVE, identify, read_chunks
from synack.samples.generate import OUT
from tests import shorthands as inventory
from tests.conftest import SHARED

CORPUS = SHARED / "suricata-corpus"


def folders(pattern: str) -> list[str]:
    return sorted(p.name for p in CORPUS.glob(pattern)) if CORPUS.is_dir() else []


def records(path: Path) -> tuple[pa.Table, list[Any]]:
    source = identify(path)
    assert source is not None and source.kind == SURICATA_EVE
    chunks = list(read_chunks(source))
    tables = [c.table for c in chunks if c.table is not None]
    return pa.concat_tables(tables, promote_options="permissive"), [q for c in chunks for q in c.quarantined]


def strings(t: pa.Table, column: str) -> list[Any]:
    col = t.column(column)
    return (col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col).to_pylist()


@pytest.mark.parametrize("name", [n for n in folders("*") if (CORPUS / n / "eve.json").exists()])
def test_every_flow_event_ingests_without_quarantine(name: str) -> None:
    path = CORPUS / name / "eve.json"
    t, quarantined = records(path)
    flows = sum(1 for line in path.read_bytes().splitlines() if json.loads(line).get("event_type") == "flow")
    assert quarantined == [] and t.num_rows == flows
    assert len(set(t.column("uid").to_pylist())) == flows  # flow_id as uid


def test_flow_start_is_the_time_and_offsets_become_utc() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/suricata-corpus is not present")
    t, _ = records(CORPUS / "slips-test6" / "eve.json")
    first = t.slice(0, 1).to_pylist()[0]
    # flow.start "2021-06-06T16:38:55.855844+0200", logged at "2021-06-06T15:57:37.272281+0200"
    assert first["ts"] == dt.datetime(2021, 6, 6, 14, 38, 55, 855844, tzinfo=dt.UTC)
    assert first["sensor"] == "stratosphere.org" and first["proto"] == "udp" and first["service"] is None


def test_zeus_capture_has_no_tcp_server() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/suricata-corpus is not present")
    t, _ = records(CORPUS / "zeus-menna" / "eve.json")
    tcp_open = t.filter(pc.and_(pc.equal(t.column("proto").cast(pa.string()), "tcp"),
                                pc.equal(t.column("outcome").cast(pa.string()), "open")))  # fmt: skip
    with open(CORPUS / "zeus-menna" / "expected_tcp_servers.tsv") as f:
        assert len(list(csv.reader(f, delimiter="\t"))) == 1  # header only
    assert tcp_open.num_rows == 0


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """suricata-verify's dotted match keys -> an EVE object."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if "[" in key:
            continue
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def verify_flows(name: str) -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((CORPUS / name / "test.yaml").read_text())
    flows = []
    for check in doc.get("checks", []):
        match = (check.get("filter") or {}).get("match") or {}
        if match.get("event_type") == "flow" and "tcp.tcp_flags_tc" in match:
            flows.append(_nest(match))
    return flows


def implied_outcome(flow: dict[str, Any]) -> str:
    """What the flags imply, straight from DESIGN.md's rule."""
    tc, ts = int(flow["tcp"]["tcp_flags_tc"], 16), int(flow["tcp"]["tcp_flags_ts"], 16)
    if tc & 0x02:
        return "open"
    if ts & 0x02 and tc & 0x08:
        return "inferred"  # the server pushed data, its SYN-ACK not seen
    if tc & 0x04 and not tc & 0x08:
        return "rejected"
    if ts & 0x02:
        return "unanswered" if flow["flow"]["pkts_toclient"] == 0 else "ambiguous"
    return "midstream"


@pytest.mark.parametrize("name", [n for n in folders("sv-*") if (CORPUS / n / "test.yaml").exists()])
def test_suricata_verify_flows_give_the_outcome_their_flags_imply(name: str, tmp_path: Path) -> None:
    flows = verify_flows(name)
    if not flows:
        pytest.skip("the expected flow record has no TCP flags")
    lines = []
    for i, flow in enumerate(flows):
        event = {"timestamp": "2016-05-27T06:56:12.000000+0000", "flow_id": 1000 + i, "src_ip": "10.0.0.1",
                 "src_port": 40000 + i, "dest_ip": "10.0.0.2", "dest_port": 80, "proto": "TCP", **flow}  # fmt: skip
        event["flow"] = {"start": "2016-05-27T06:56:11.304062+0000", "end": "2016-05-27T06:56:11.900923+0000",
                         **flow["flow"]}  # fmt: skip
        lines.append(json.dumps(event))
    path = tmp_path / "eve.json"
    path.write_text("\n".join(lines) + "\n")
    t, quarantined = records(path)
    assert quarantined == []
    assert strings(t, "outcome") == [implied_outcome(f) for f in flows]
    with open(CORPUS / name / "expected_tcp_servers.tsv") as f:
        expected_servers = {(r[0], int(r[1])) for r in list(csv.reader(f, delimiter="\t"))[1:] if r}
    opened = [f for f in flows if implied_outcome(f) == "open" and "dest_ip" in f]
    import ipaddress

    derived = {(ipaddress.ip_address(f["dest_ip"]).compressed, f["dest_port"]) for f in opened}
    if derived:
        assert derived <= expected_servers  # the server the flags name is the one tshark saw answer


def test_bad_lines_cee_prefix_and_other_events(tmp_path: Path) -> None:
    good = {"timestamp": "2026-11-21T10:00:05.000000+0200", "flow_id": 1, "event_type": "flow",
            "src_ip": "2001:0db8:0000:0000:0000:0000:0000:0001", "src_port": 5000,
            "dest_ip": "2001:0db8:0000:0000:0000:0000:0000:0002", "dest_port": 443, "proto": "TCP",
            "app_proto": "tls", "flow": {"pkts_toserver": 3, "pkts_toclient": 3, "bytes_toserver": 1,
            "bytes_toclient": 2, "start": "2026-11-21T10:00:00.123456+0200", "end": "2026-11-21T10:00:01.0+0200"},
            "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "state": "closed"}}  # fmt: skip
    lines = [
        json.dumps({"timestamp": "2026-11-21T10:00:00.0+0200", "event_type": "stats", "stats": {"uptime": 1}}),
        json.dumps(good),
        '{"event_type":"flow", "flow_id": 2, "broken',
        "@cee: " + json.dumps({**good, "flow_id": 3}),
        json.dumps({"event_type": "dns", "dns": {"rrname": "example.com"}}),
        json.dumps({**good, "flow_id": 4, "flow": {**good["flow"], "start": "ts-error"}}),
    ]
    path = tmp_path / "eve.json"
    path.write_text("\n".join(lines) + "\n")
    t, quarantined = records(path)
    assert sorted(t.column("uid").to_pylist()) == ["1", "3"]
    assert sorted(q.line for q in quarantined) == [3, 6]
    row = t.slice(0, 1).to_pylist()[0]
    assert row["ts"] == dt.datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=dt.UTC)
    assert (row["server_h"], row["server_p"], row["client_h"]) == ("2001:db8::2", 443, "2001:db8::1")


def test_a_store_with_a_zeek_and_a_suricata_sensor(tmp_path: Path) -> None:
    flow = {"timestamp": "2026-11-21T12:00:05+0000", "flow_id": 9, "event_type": "flow", "src_ip": "10.1.0.101",
            "src_port": 50000, "dest_ip": "10.1.0.10", "dest_port": 443, "proto": "TCP", "app_proto": "tls",
            "host": "suri-1", "flow": {"pkts_toserver": 5, "pkts_toclient": 5, "bytes_toserver": 1,
            "bytes_toclient": 1, "start": "2026-11-21T12:00:00+0000", "end": "2026-11-21T12:00:01+0000"},
            "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b"}}  # fmt: skip
    eve = tmp_path / "suricata" / "eve.json"
    eve.parent.mkdir()
    eve.write_text(json.dumps(flow) + "\n" + json.dumps({**flow, "flow_id": 10, "dest_port": 8081}) + "\n")
    store = tmp_path / "store"
    ingest_paths([OUT, eve.parent], store)
    df = inventory.servers(store)
    https = df[(df.server_h == "10.1.0.10") & (df.server_p == 443)]
    assert set(https["sensors"].item().split(",")) == {"core-2", "edge-1", "suri-1"}
    assert df[(df.server_p == 8081)]["sensors"].item() == "suri-1"


def test_netflow_only_output_is_paired_by_flow_id(tmp_path: Path) -> None:
    """sv-netflow-eve's two netflow records (one per direction) make one open flow."""
    yaml = pytest.importorskip("yaml")
    if not CORPUS.is_dir():
        pytest.skip("../shared/suricata-corpus is not present")
    doc = yaml.safe_load((CORPUS / "sv-netflow-eve" / "test.yaml").read_text())
    events = [_nest(c["filter"]["match"]) for c in doc["checks"]
              if (c.get("filter") or {}).get("match", {}).get("event_type") == "netflow"]  # fmt: skip
    assert len(events) == 2
    lines = [json.dumps({"timestamp": "2016-05-27T06:56:12.0+0000", "flow_id": 77, **e}) for e in events]
    lines.insert(1, json.dumps({"timestamp": "2016-05-27T06:56:12.0+0000", "event_type": "stats", "stats": {}}))
    one_sided = {**events[0], "flow_id": 78, "dest_port": 81}
    lines.append(json.dumps({"timestamp": "2016-05-27T06:56:12.0+0000", **one_sided}))
    path = tmp_path / "eve.json"
    path.write_text("\n".join(lines) + "\n")
    t, quarantined = records(path)
    assert quarantined == [] and sorted(t.column("uid").to_pylist()) == ["77", "78"]
    rows = {r["uid"]: r for r in t.to_pylist()}
    assert rows["77"]["outcome"] == "open" and (rows["77"]["server_h"], rows["77"]["server_p"]) == (
        "82.165.177.154",
        80,
    )
    assert rows["77"]["orig_pkts"] == 6 and rows["77"]["resp_pkts"] == 4 and rows["77"]["client_h"] == "10.16.1.11"
    with open(CORPUS / "sv-netflow-eve" / "expected_tcp_servers.tsv") as f:
        assert ("82.165.177.154", "80") in {(r[0], r[1]) for r in csv.reader(f, delimiter="\t")}
    assert rows["78"]["outcome"] != "open" and rows["78"]["server_h"] is None
