"""The loop from the store to the sensor and back: `synack export-known` writes
the baseline, the package's notice.zeek raises notices on a real Zeek for
the ports missing from it, and synack keeps those notices and shows them
in the report.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.log_files import find_conn_logs
from synack.inventory import Inventory
from synack.inventory.allowlist import parse_allowlist
from synack.inventory.daily_report import build_report
from synack.inventory.known_export import FIELDS, TYPES
from synack.samples.generate import zeek_header

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zeek_scripts"
CAPTURES = PACKAGE / "testing" / "traces"
runner = CliRunner()

ALLOW = "10.1.0.0/24 tcp 3000-4000  # remote desktops\n10.9.0.0/16 any 53\n"
#: Zeek's view of the captures' networks (10.1/16 and 2001:db8::/32 are local).
SITE = "redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };\n"


def _baseline_rows(path: Path) -> pd.DataFrame:
    lines = path.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert f"#fields\t{chr(9).join(FIELDS)}" in header and f"#types\t{chr(9).join(TYPES)}" in header
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    return pd.DataFrame(rows, columns=list(FIELDS))


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("samples") / "store"
    ingest_paths([ROOT / "samples" / "zeek"], store)
    return store


def test_export_known_lists_every_server_port_and_allowlist_range(sample_store: Path, tmp_path: Path) -> None:
    """One `known` row per server port (a /32 or /128, lo = hi = the port,
    first_seen to the microsecond), one `expected` row per allowlist range."""
    inv = Inventory(sample_store, nets="all", allow=parse_allowlist(ALLOW))
    done = inv.export_known(tmp_path / "known.tsv")
    rows = _baseline_rows(done.path)
    servers = inv.servers()
    known = rows[rows["what"] == "known"]
    assert done.known == len(known) == len(servers) > 0
    expect = {
        (f"{h}/{128 if ':' in h else 32}", p, str(n), str(n), f"{t.value // 1000 / 1e6:.6f}")
        for h, p, n, t in zip(servers["server_h"], servers["proto"], servers["server_p"], servers["first_seen"])
    }
    assert set(map(tuple, known[["net", "proto", "lo", "hi", "first_seen"]].values)) == expect
    assert any(net.endswith("/128") for net in known["net"])  # the samples' IPv6 server
    expected = rows[rows["what"] == "expected"]
    assert done.expected == 2
    assert set(map(tuple, expected[["net", "proto", "lo", "hi", "first_seen"]].values)) == {
        ("10.1.0.0/24", "tcp", "3000", "4000", "-"),
        ("10.9.0.0/16", "any", "53", "53", "-"),
    }


def test_export_known_filters_like_every_query(sample_store: Path, tmp_path: Path) -> None:
    """--nets and --sensor narrow the known ports exactly as `servers` does."""
    inv = Inventory(sample_store, nets="10.1.0.0/24", sensors="edge-1")
    rows = _baseline_rows(inv.export_known(tmp_path / "k.tsv").path)
    assert len(rows) == len(inv.servers()) > 0
    assert all(net.startswith("10.1.0.") for net in rows["net"])


def test_export_known_replaces_the_file_whole(
    sample_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing leaves the previous baseline as it was and no temporary file."""
    target = tmp_path / "known.tsv"
    inv = Inventory(sample_store, nets="all")
    inv.export_known(target)
    before = target.read_bytes()

    def broken(out: object, servers: object, allowed: object) -> tuple[int, int]:
        out.write("#separator \\x09\n")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("synack.inventory.known_export.write_known", broken)
    with pytest.raises(Exception, match="No space left"):
        inv.export_known(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["known.tsv"]


def test_export_known_command(sample_store: Path, tmp_path: Path) -> None:
    """The command says what it wrote; a directory that does not exist is one error line, exit 2."""
    allow = tmp_path / "allow.txt"
    allow.write_text(ALLOW)
    out = tmp_path / "known.tsv"
    result = runner.invoke(app, ["export-known", "--store", str(sample_store), "--nets", "all", "--allow", str(allow),
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _baseline_rows(out)
    assert f"{(rows['what'] == 'known').sum()} known server ports and 2 expected port ranges" in result.output
    result = runner.invoke(app, ["export-known", "--store", str(sample_store), "-o", str(tmp_path / "no" / "k.tsv")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: cannot write {tmp_path / 'no' / 'k.tsv'}: No such file or directory"
    ]


NOTICE_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
    ("id.resp_p", "port"), ("proto", "enum"), ("note", "enum"), ("msg", "string"), ("sub", "string"),
    ("src", "addr"), ("dst", "addr"), ("p", "port"), ("actions", "set[enum]"), ("suppress_for", "interval"),
    ("sensor", "string"),
]  # fmt: skip


def _notice_line(ts: float, note: str, dst: str, p: int, proto: str = "tcp", msg: str = "m") -> str:
    return "\t".join([f"{ts:.6f}", "CAbc", "10.1.0.2", "41000", dst, str(p), proto, note, msg, "-", "10.1.0.2", dst,
                      str(p), "Notice::ACTION_LOG", "86400.000000", "edge-1"]) + "\n"  # fmt: skip


def test_notice_logs_are_a_source_of_their_own(tmp_path: Path) -> None:
    """notice.log (ASCII, rotated and gzipped, or JSON) is found beside conn.log,
    its SynAck notices are kept (other notes are not), once however often it is ingested."""
    logs = tmp_path / "logs"
    text = zeek_header("notice", NOTICE_FIELDS, "2026-11-21-10-00-00") + "".join([
        _notice_line(1795000000.5, "SynAck::New_Server_Port", "10.1.0.1", 8443, msg="new; reply: 220 hi\\x0d\\x0a"),
        _notice_line(1795000001.0, "Scan::Port_Scan", "10.1.0.1", 0),
        _notice_line(1795000002.0, "SynAck::New_UDP_Service", "2001:db8::1", 5000, "udp"),
    ]) + "#close\t2026-11-21-11-00-00\n"  # fmt: skip
    (logs / "2026-11-21").mkdir(parents=True)
    (logs / "2026-11-21" / "notice.10:00:00-11:00:00.log.gz").write_bytes(gzip.compress(text.encode()))
    (logs / "current").mkdir()
    record = {"ts": 1795000003.25, "uid": "CJson", "note": "SynAck::New_Server_Port", "msg": "json one",
              "src": "10.1.0.2", "dst": "10.1.0.7", "p": 22, "proto": "tcp", "sensor": "edge-2"}  # fmt: skip
    (logs / "current" / "notice.log").write_text(json.dumps(record) + "\n")
    found = find_conn_logs([logs])
    assert sorted(p.name for p in found.notices) == ["notice.10:00:00-11:00:00.log.gz", "notice.log"]

    store = tmp_path / "store"
    first = ingest_paths([logs], store)
    assert not first.errors and first.notices == 3
    assert ingest_paths([logs], store).notices == 0  # again: nothing new
    notices = Inventory(store, nets="all").notices()
    assert list(notices["note"]) == ["SynAck::New_Server_Port", "SynAck::New_UDP_Service", "SynAck::New_Server_Port"]
    assert list(notices["server_h"]) == ["10.1.0.1", "2001:db8::1", "10.1.0.7"]
    assert list(notices["server_p"]) == [8443, 5000, 22] and list(notices["proto"]) == ["tcp", "udp", "tcp"]
    assert notices["msg"][0] == "new; reply: 220 hi\r\n"  # Zeek's escapes decoded
    assert list(notices["sensor"]) == ["edge-1", "edge-1", "edge-2"]
    assert str(notices["ts"].dtype) == "datetime64[us, UTC]"
    assert notices["ts"][2] == pd.Timestamp(1795000003.25, unit="s", tz="UTC")
    assert len(Inventory(store, nets="10.0.0.0/8").notices()) == 2
    assert len(Inventory(store, nets="all", sensors="edge-2").notices()) == 1
    assert len(Inventory(store, nets="all").notices(until=pd.Timestamp(1795000001, unit="s", tz="UTC"))) == 1
    # The command: network text never reaches a terminal raw; status counts them.
    for fmt in ("table", "csv"):
        result = runner.invoke(app, ["notices", "--store", str(store), "--nets", "all", "-f", fmt])
        assert result.exit_code == 0 and "\r" not in result.output and "8443" in result.output, result.output
    status = runner.invoke(app, ["status", "--store", str(store), "--json"])
    assert json.loads(status.output)["sensor_notices"] == 3


def _zeek(pcap: Path, workdir: Path, env: dict[str, str], *scripts: Path | str) -> subprocess.CompletedProcess[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(["zeek", "-C", "-r", str(pcap), str(PACKAGE), *map(str, scripts)], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _keys(df: pd.DataFrame, host: str = "server_h", port: str = "server_p") -> list[tuple[str, str, int]]:
    return sorted(zip(df[host].astype(str), df["proto"].astype(str), df[port].astype(int)))


@pytest.mark.parametrize("as_filter", [False, True], ids=["table", "bloom-filter"])
def test_the_sensor_raises_exactly_the_ports_missing_from_the_baseline(
    zeek_env: dict[str, str], tmp_path: Path, as_filter: bool
) -> None:
    """A store built from the package's other captures is exported with an
    allowlist; Zeek with notice.zeek reads new-ports.pcap: exactly the local
    server ports synack finds in that capture that are neither in the store
    nor allowed raise a notice, each once; ingested back, the report shows
    the notice time beside "first seen" for exactly those ports. The same
    with the known ports as a Bloom filter (export-known --filter): Zeek
    hashes an IPv4, an IPv6 and a UDP port as synack does."""
    baseline_store = tmp_path / "baseline"
    for pcap in ("ipv6-server.pcap", "client-first-200.pcap", "udp-late-answer.pcap", "synack-payload.pcap"):
        _zeek(CAPTURES / pcap, tmp_path / "before" / pcap, zeek_env)
    assert not ingest_paths([tmp_path / "before"], baseline_store).errors
    allowed = parse_allowlist(ALLOW)
    before = Inventory(baseline_store, nets="all", allow=allowed)
    known_file = tmp_path / "sensor" / "known.tsv"
    known_file.parent.mkdir()
    filter_file = tmp_path / "sensor" / "known.filter"
    done = before.export_known(known_file, filter_path=filter_file if as_filter else None)
    assert (done.filter is not None) == as_filter == filter_file.exists()
    assert len(_baseline_rows(known_file)) == done.expected + (0 if as_filter else done.known)

    site = tmp_path / "sensor" / "site.zeek"
    site.write_text(
        SITE
        + f'redef SynAck::known_servers_file = "{known_file}";\n'
        + (f'redef SynAck::known_filter_file = "{filter_file}";\n' if as_filter else "")
    )
    run = _zeek(CAPTURES / "new-ports.pcap", tmp_path / "sensor", zeek_env, PACKAGE / "scripts" / "notice.zeek", site)
    assert "warning" not in run.stderr.lower()
    reporter = tmp_path / "sensor" / "reporter.log"
    assert not reporter.exists() or "WARNING" not in reporter.read_text()

    # What synack itself says is in the capture, minus the baseline and the allowlist.
    after_store = tmp_path / "after"
    ingest_paths([tmp_path / "sensor" / "conn.log"], after_store)
    now = Inventory(after_store, nets="10.1.0.0/16,2001:db8::/32", allow=allowed).servers()
    known = set(_keys(before.servers()))
    marked = Inventory(after_store, nets="all", allow=allowed).new_servers("2000-01-01", show_allowed=True)
    allowed_keys = set(_keys(marked[marked["allowed"]]))
    missing = [k for k in _keys(now) if k not in known and k not in allowed_keys]
    assert len(missing) >= 4 and any(":" in h for h, _, _ in missing) and any(p == "udp" for _, p, _ in missing)
    seen_before = set(_keys(now)) & known
    assert any(":" in h for h, _, _ in seen_before) and any(p == "udp" for _, p, _ in seen_before)

    notice_log = tmp_path / "sensor" / "notice.log"
    rows = [line.split("\t") for line in notice_log.read_text().splitlines() if not line.startswith("#")]
    fields = next(line for line in notice_log.read_text().splitlines() if line.startswith("#fields")).split("\t")[1:]
    raised = pd.DataFrame(rows, columns=fields)
    assert _keys(raised, "dst", "p") == missing  # exactly those, each once
    assert set(raised["note"]) == {"SynAck::New_Server_Port", "SynAck::New_UDP_Service"}
    conn_uids = set(line.split("\t")[1] for line in (tmp_path / "sensor" / "conn.log").read_text().splitlines()
                    if not line.startswith("#"))  # fmt: skip
    assert set(raised["uid"]) <= conn_uids

    # Back into the store: the report's new server ports carry the notice time.
    ingest_paths([tmp_path / "sensor"], after_store)
    report = build_report(after_store, "2023-11-14", nets="10.1.0.0/16,2001:db8::/32", allow=allowed,
                          today=pd.Timestamp("2023-11-15").date())  # fmt: skip
    new = report.tables["new_servers"]
    with_notice = new[new["notice_ts"].notna()]
    assert _keys(with_notice) == missing
    assert (with_notice["notice_ts"] >= with_notice["first_seen"]).all()
    assert (with_notice["notice_ts"] - with_notice["first_seen"]).max() < pd.Timedelta(seconds=10)


def _notices(workdir: Path) -> list[tuple[str, str, int]]:
    notice_log = workdir / "notice.log"
    if not notice_log.exists():
        return []
    lines = notice_log.read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    raised = pd.DataFrame([line.split("\t") for line in lines if not line.startswith("#")], columns=fields)
    return _keys(raised, "dst", "p")


@pytest.fixture(scope="module")
def capture_store(tmp_path_factory: pytest.TempPathFactory, zeek_env: dict[str, str]) -> Path:
    """A store of new-ports.pcap as the package logs it."""
    work = tmp_path_factory.mktemp("capture")
    _zeek(CAPTURES / "new-ports.pcap", work / "logs", zeek_env)
    assert not ingest_paths([work / "logs"], work / "store").errors
    return work / "store"


def test_a_shrunk_or_broken_filter_is_not_taken(capture_store: Path, zeek_env: dict[str, str], tmp_path: Path) -> None:
    """notice.zeek takes a re-read filter only when it is whole and holds no
    more than max_shrink fewer ports: a filter of every port of the capture,
    replaced at the first notice by one of a single host's ports (forced),
    is kept (one warning, no notice for the ports it knows); a filter cut
    short (a chunk line lost) is never taken: notices stay off, and say so."""
    from synack.inventory.known_filter import write_filter

    servers = Inventory(capture_store, nets="all").servers()
    first = (servers["server_h"].astype(str) == "10.1.0.1") & (servers["server_p"] == 8443)
    assert first.sum() == 1 and len(servers) >= 6  # 10.1.0.1:8443 answers 1 s into the capture, before the others
    work = tmp_path / "shrink"
    work.mkdir()
    (work / "known.tsv").write_text((CAPTURES / "known.tsv").read_text().split("10.1.0.1/32", 1)[0])
    with open(work / "known.filter", "w") as f:
        write_filter(f, servers[~first])
    with open(work / "next.filter", "w") as f:
        write_filter(f, servers[first])
    site = work / "site.zeek"
    site.write_text(
        SITE + 'redef SynAck::known_servers_file = "known.tsv";\n'
        'redef SynAck::known_filter_file = "known.filter";\n'
        "global replaced = F;\n"
        'hook Notice::policy(n: Notice::Info) { if ( ! replaced ) rename("next.filter", "known.filter"); '
        "replaced = T; }\n"
    )
    run = subprocess.run(["zeek", "-C", "--pseudo-realtime", "-r", str(CAPTURES / "new-ports.pcap"), str(PACKAGE),
                          str(PACKAGE / "scripts" / "notice.zeek"), str(site)], cwd=work, env=zeek_env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert not (work / "next.filter").exists()  # it was renamed, and re-read
    assert _notices(work) == [("10.1.0.1", "tcp", 8443)]  # the others stay known
    reporter = (work / "reporter.log").read_text()
    assert f"holds 1 known ports where the previous one held {len(servers) - 1}" in reporter
    assert "the previous one is kept" in reporter

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "known.tsv").write_text((work / "known.tsv").read_text())
    lines = (work / "known.filter").read_text().splitlines(keepends=True)
    (broken / "known.filter").write_text("".join(line for line in lines if not line.startswith("chunk\t3\t")))
    (broken / "site.zeek").write_text(
        SITE + 'redef SynAck::known_servers_file = "known.tsv";\nredef SynAck::known_filter_file = "known.filter";\n'
    )
    _zeek(CAPTURES / "new-ports.pcap", broken, zeek_env, PACKAGE / "scripts" / "notice.zeek", broken / "site.zeek")
    assert _notices(broken) == []
    assert "is not a whole filter: notices are off until it is read" in (broken / "reporter.log").read_text()
