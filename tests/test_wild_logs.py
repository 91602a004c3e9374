"""Real conn logs from real sensors (../shared/wild-logs): every one ingests,
every bad line is quarantined with a reason, and the server set of each is
what its history says, derived here independently of synack's rules."""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
from pathlib import Path

import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import Inventory
from tests.conftest import SHARED

WILD = SHARED / "wild-logs"

#: The conn_states Zeek documents as "connection established" (S1, SF) or
#: established and then closed or reset by one side.
ESTABLISHED = {"S1", "SF", "S2", "S3", "RSTO", "RSTR"}

Key = tuple[str, str, int]


def wild_logs() -> list[Path]:
    if not WILD.is_dir():
        return []
    return sorted(next(p for p in folder.iterdir() if p.is_file()) for folder in WILD.iterdir() if folder.is_dir())


def _rows(path: Path) -> list[dict[str, str]]:
    """The data rows of a Zeek log, read here with nothing of synack: ASCII
    with its own separator, or JSON lines; a line that does not have the
    header's fields, a number for ts and ports is skipped (synack
    quarantines those)."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    text = data.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        rows = []
        for line in text.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            rows.append({k: "" if v is None else str(v) for k, v in obj.items()})
        return rows
    sep, fields, rows = "\t", [], []
    for line in text.splitlines():
        if line.startswith("#separator"):
            sep = bytes(line[len("#separator") + 1 :].strip(), "ascii").decode("unicode_escape")
        elif line.startswith("#fields"):
            fields = line.split(sep)[1:]
        elif line and not line.startswith("#"):
            values = line.split(sep)
            if len(values) == len(fields):
                rows.append(dict(zip(fields, values)))
    return [r for r in rows if _numbers(r)]


def _numbers(row: dict[str, str]) -> bool:
    try:
        float(row["ts"]), int(row["id.orig_p"]), int(row["id.resp_p"])
        ipaddress.ip_address(row["id.orig_h"]), ipaddress.ip_address(row["id.resp_h"])
    except (KeyError, ValueError):
        return False
    return True


def servers_by_history(rows: list[dict[str, str]]) -> tuple[set[Key], set[Key]]:
    """(servers whose SYN-ACK was seen, servers inferred from the responder's
    data or established ACK after a SYN with no SYN-ACK seen), from Zeek's
    documented history letters: upper case the originator, lower case the
    responder; h/H a SYN-ACK, S a SYN, d data, a a pure ACK, r a reset."""
    seen: set[Key] = set()
    inferred: set[Key] = set()
    for r in rows:
        proto, history, state = r.get("proto", "").lower(), r.get("history", ""), r.get("conn_state", "")
        history = "" if history == "-" else history
        resp = (ipaddress.ip_address(r["id.resp_h"]).compressed, proto, int(r["id.resp_p"]))
        orig = (ipaddress.ip_address(r["id.orig_h"]).compressed, proto, int(r["id.orig_p"]))
        if proto == "tcp":
            if "h" in history:
                seen.add(resp)
            elif "H" in history:
                seen.add(orig)
            elif "S" in history:
                after = history[history.index("S") + 1 :]
                answer = next((c for c in after if c in "dr"), "")
                if answer == "d" or ("a" in after and state in ESTABLISHED):
                    inferred.add(resp)
        elif proto == "udp":
            packets = r.get("resp_pkts", "")
            address = ipaddress.ip_address(resp[0])
            if packets not in ("", "-", "0") and not (address.is_multicast or resp[0] == "255.255.255.255"):
                seen.add(resp)
    return seen, inferred - seen


@pytest.mark.parametrize("log", wild_logs(), ids=lambda p: p.parent.name)
def test_a_wild_log_ingests_and_its_servers_follow_its_history(log: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    summary = ingest_paths([log], store)
    assert not summary.errors, summary.errors[0].message
    assert summary.files[0].status == "ingested" and not summary.files[0].message  # every line read, none waits
    rows = _rows(log)
    quarantine = list((store / "quarantine").rglob("*.parquet")) if (store / "quarantine").exists() else []
    if quarantine:
        import pyarrow.parquet as pq

        reasons = [r for f in quarantine for r in pq.read_table(f).column("reason").to_pylist()]
        assert len(reasons) == summary.quarantined and all(reasons)
    assert summary.rows + summary.quarantined >= len(rows)

    seen, inferred = servers_by_history(rows)
    inventory = Inventory(store, nets="all")
    found = inventory.servers()
    keys = {(h, p, int(n)) for h, p, n in zip(found["server_h"], found["proto"], found["server_p"])}
    assert keys == seen | inferred
    rows = zip(found["server_h"], found["proto"], found["server_p"].astype(int), found["synack_seen"])
    marked = {(h, p, n) for h, p, n, seen_synack in rows if not seen_synack}
    assert marked == inferred
    strict = Inventory(store, nets="all", strict=True).servers()
    assert {(h, p, int(n)) for h, p, n in zip(strict["server_h"], strict["proto"], strict["server_p"])} == seen


def test_the_lossy_captures_have_inferred_servers() -> None:
    """The CTU mixed capture's sensor missed SYN-ACKs: 17.164.1.41:443 is
    one of the servers only its data shows."""
    log = WILD / "17-ctu-011-labeled" / "conn.log.labeled"
    if not log.exists():
        pytest.skip("../shared/wild-logs is not present")
    seen, inferred = servers_by_history(_rows(log))
    assert ("17.164.1.41", "tcp", 443) in inferred and len(inferred) >= 20


def test_no_record_says_unanswered_where_the_responder_sent_anything(tmp_path: Path) -> None:
    logs = wild_logs()
    if not logs:
        pytest.skip("../shared/wild-logs is not present")
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    ingest_paths(logs, tmp_path / "store")
    table = ds.dataset(tmp_path / "store" / "conn", partitioning="hive").to_table(
        columns=["proto", "history", "outcome", "resp_pkts"]
    )
    unanswered = table.filter(pc.equal(table.column("outcome").cast("string"), "unanswered"))
    tcp = unanswered.filter(pc.equal(unanswered.column("proto").cast("string"), "tcp"))
    responder_letters = [h for h in tcp.column("history").to_pylist() if h and re.search("[a-z]", h)]
    assert responder_letters == []
    assert pc.sum(pc.fill_null(unanswered.column("resp_pkts"), 0)).as_py() in (0, None)
