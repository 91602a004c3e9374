"""What a server is: Zeek's software, ssh, ssl, x509 and dhcp logs, ingested and joined to the inventories.

The logs come from the real Zeek in ../shared/zeek run with `local` (the
policy scripts a zeekctl sensor loads) over the corpus captures, and over
captures made here with scapy (an upgrade between two days: the corpus has
none); every identity column is compared with what zeek-cut gives for the
same logs.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from synack.cli import app
from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.log_source import identify
from synack.ingest.server_identity import IDENTITY_KINDS, IDENTITY_SCHEMA, TEXT_CHARS, normalize_identity
from synack.ingest.snapshot import locate, take_snapshot
from synack.inventory import Inventory
from synack.inventory.identities import described, folded
from tests.conftest import ZEEK_CORPUS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zeek_scripts"
runner = CliRunner()

#: Corpus captures whose logs identify servers: SSH, TLS (with and without SNI), HTTP, STARTTLS, DHCP.
CAPTURES = [
    "ssh-basic/ssh.pcap",
    "_known-services/sslh-multi/ssl-and-ssh-using-sslh.pcap",
    "_known-services/std-ports/var-services-std-ports.pcap",
    "imap-starttls/imap-starttls.pcap",
    "pppoe-over-qinq-tls/pppoe-over-qinq.pcap",
    "dhcp-udp-broadcast/dhcp.pcap",
    "wikipedia/wikipedia.pcap",
]


def _zeek(pcap: Path, workdir: Path, env: dict[str, str]) -> Path:
    """Run the real Zeek with `local` and the package over `pcap` in `workdir`; return `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(["zeek", "-C", "-r", str(pcap), "local", str(PACKAGE)], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return workdir


def _cut(log: Path, *fields: str, env: dict[str, str]) -> list[list[str]]:
    """zeek-cut's rows of `fields` of `log` ([] when Zeek did not write it)."""
    if not log.exists():
        return []
    run = subprocess.run(["zeek-cut", *fields], stdin=log.open("rb"), env=env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [line.split("\t") for line in run.stdout.decode().splitlines() if line]


@pytest.fixture(scope="module")
def corpus_logs(zeek_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per corpus capture with what Zeek `local` wrote for it."""
    if not ZEEK_CORPUS.is_dir():
        pytest.skip("../shared/zeek-corpus is not present")
    root = tmp_path_factory.mktemp("identity-logs")
    for capture in CAPTURES:
        _zeek(ZEEK_CORPUS / capture, root / capture.split("/")[-2], zeek_env)
    return root


@pytest.fixture(scope="module")
def corpus_store(corpus_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("identity-store") / "store"
    for folder in sorted(corpus_logs.iterdir()):
        summary = ingest_paths([folder], store)
        assert not summary.errors, [e.message for e in summary.errors]
    return store


def _servers_json(store: Path) -> dict[tuple[str, int], dict[str, object]]:
    result = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all", "-f", "json"])
    assert result.exit_code == 0, result.output
    return {(r["server_h"], r["server_p"]): r for r in json.loads(result.stdout)}


def test_every_server_software_zeek_logs_shows_in_servers(corpus_logs: Path, corpus_store: Path,
                                                            zeek_env: dict[str, str]) -> None:  # fmt: skip
    servers = _servers_json(corpus_store)
    checked = 0
    for folder in corpus_logs.iterdir():
        for host, port, kind, name, major, unparsed in _cut(
            folder / "software.log", "host", "host_p", "software_type", "name", "version.major", "unparsed_version",
            env=zeek_env,
        ):  # fmt: skip
            if "SERVER" not in kind:
                continue
            row = servers[(host, int(port))]
            assert row["product"] == name, (host, port, row)
            assert str(row["version"]).startswith(major) and str(row["version"]) in unparsed, (row, unparsed)
            checked += 1
        for host, port, banner in _cut(folder / "ssh.log", "id.resp_h", "id.resp_p", "server", env=zeek_env):
            if banner == "-":
                continue
            row = servers[(host, int(port))]
            assert row["product"] and str(row["product"]) in banner, (row, banner)
            assert not row["version"] or str(row["version"]) in banner
            checked += 1
    assert checked >= 10  # OpenSSH, paramiko and Apache servers of four captures


def test_every_certificate_and_sni_zeek_logs_shows_in_tls_names(corpus_logs: Path, corpus_store: Path,
                                                                 zeek_env: dict[str, str]) -> None:  # fmt: skip
    servers = _servers_json(corpus_store)
    checked = 0
    for folder in corpus_logs.iterdir():
        certs = {fp: (subject, sans) for fp, subject, sans in _cut(
            folder / "x509.log", "fingerprint", "certificate.subject", "san.dns", env=zeek_env)}  # fmt: skip
        for host, port, sni, chain in _cut(folder / "ssl.log", "id.resp_h", "id.resp_p", "server_name",
                                           "cert_chain_fps", env=zeek_env):  # fmt: skip
            names = str(servers[(host, int(port))]["tls_names"]).split(", ")
            leaf = chain.split(",")[0]
            subject, sans = certs[leaf]
            cn = [part[3:] for part in subject.split(",") if part.startswith("CN=")][0]
            expected = {cn} | ({*sans.split(",")} - {"-", "(empty)"})
            assert expected <= set(names), (host, port, names, expected)
            if sni != "-":
                assert sni in names or f"{sni} (sni)" in names, (sni, names)
            checked += 1
    assert checked == 3  # the TLS of sslh-multi, imap-starttls and pppoe-over-qinq


def test_dhcp_leases_are_kept_as_zeek_logged_them(corpus_logs: Path, corpus_store: Path,
                                                   zeek_env: dict[str, str]) -> None:  # fmt: skip
    rows = _cut(corpus_logs / "dhcp-udp-broadcast" / "dhcp.log", "ts", "assigned_addr", "host_name", "mac",
                "lease_time", env=zeek_env)  # fmt: skip
    leased = [r for r in rows if r[1] != "-" and r[2] != "-"]
    assert leased
    facts = take_snapshot(locate(corpus_store)).read_identity().to_pandas()
    leases = facts[facts["kind"] == "lease"]
    for ts, address, name, mac, lease in leased:
        match = leases[(leases["host"] == address) & (leases["name"] == name)]
        assert len(match) == 1 and match["mac"].iloc[0] == mac
        start = pd.Timestamp(float(ts), unit="s", tz="UTC")
        assert abs((match["first_seen"].iloc[0] - start).total_seconds()) < 1e-5
        assert abs((match["last_seen"].iloc[0] - match["first_seen"].iloc[0]).total_seconds() - float(lease)) < 1e-3


def test_dns_names_of_a_server_address_show_in_host_names(corpus_logs: Path, corpus_store: Path,
                                                           zeek_env: dict[str, str]) -> None:  # fmt: skip
    """A server whose address a DNS answer gave, while it was seen: the name shows, marked (dns)."""
    servers = _servers_json(corpus_store)
    checked = 0
    for query, answers in _cut(corpus_logs / "wikipedia" / "dns.log", "query", "answers", env=zeek_env):
        for answer in answers.split(","):
            for (host, port), row in servers.items():
                if host == answer and port == 80:
                    assert f"{query} (dns " in str(row["host_names"]), row
                    checked += 1
    assert checked >= 1


def test_identity_logs_are_read_exactly_once(corpus_logs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    folder = corpus_logs / "sslh-multi"
    first = ingest_paths([folder], store)
    assert first.identities >= 4  # software, ssh, ssl and x509 facts
    count = take_snapshot(locate(store)).identity_count()
    again = ingest_paths([folder], store)
    assert again.identities == 0
    # The same log rotated and compressed is the same source: nothing is added.
    rotated = tmp_path / "2016-02-17"
    rotated.mkdir()
    with (folder / "ssl.log").open("rb") as src, gzip.open(rotated / "ssl.14:00:00-15:00:00.log.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert ingest_paths([rotated], store).identities == 0
    assert take_snapshot(locate(store)).identity_count() == count


def test_json_identity_logs_give_the_same_facts(corpus_logs: Path, zeek_env: dict[str, str],
                                                tmp_path: Path) -> None:  # fmt: skip
    """Zeek's JSON writer (LogAscii::use_json) over the same capture: the same facts as its ASCII logs."""
    capture = ZEEK_CORPUS / "_known-services/sslh-multi/ssl-and-ssh-using-sslh.pcap"
    workdir = tmp_path / "json"
    workdir.mkdir()
    run = subprocess.run(["zeek", "-C", "-r", str(capture), "local", "LogAscii::use_json=T"], cwd=workdir,
                         env=zeek_env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    kinds = {identify(workdir / f"{log}.log").kind for log in ("software", "ssh", "ssl", "x509")}  # type: ignore[union-attr]
    assert kinds == {"zeek-software-json", "zeek-ssh-json", "zeek-ssl-json", "zeek-x509-json"}
    facts = {}
    for name, folder in (("ascii", corpus_logs / "sslh-multi"), ("json", workdir)):
        store = tmp_path / f"store-{name}"
        ingest_paths([folder], store)
        table = (
            take_snapshot(locate(store)).read_identity().sort_by([("kind", "ascending"), ("first_seen", "ascending")])
        )
        facts[name] = table.drop_columns(["sensor"]).to_pylist()
    assert facts["json"] == facts["ascii"]


def _scapy_session(t0: float, client: str, server: str, sport: int, dport: int, first: bytes,
                   second: bytes, server_first: bool) -> list[object]:  # fmt: skip
    """One TCP connection: handshake, one message each way, FINs."""
    from scapy.all import IP, TCP, Ether, Raw

    packets: list[object] = []

    def add(t: float, src: str, dst: str, sp: int, dp: int, flags: str, seq: int, ack: int, data: bytes = b"") -> None:
        p = Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
        if data:
            p = p / Raw(data)
        p.time = t
        packets.append(p)

    c, s = 1000, 5000
    add(t0, client, server, sport, dport, "S", c, 0)
    add(t0 + 0.01, server, client, dport, sport, "SA", s, c + 1)
    c, s = c + 1, s + 1
    add(t0 + 0.02, client, server, sport, dport, "A", c, s)
    t = t0 + 0.03
    for from_server, data in ((server_first, first), (not server_first, second)):
        if from_server:
            add(t, server, client, dport, sport, "PA", s, c, data)
            s += len(data)
            add(t + 0.005, client, server, sport, dport, "A", c, s)
        else:
            add(t, client, server, sport, dport, "PA", c, s, data)
            c += len(data)
            add(t + 0.005, server, client, dport, sport, "A", s, c)
        t += 0.01
    add(t, client, server, sport, dport, "FA", c, s)
    add(t + 0.005, server, client, dport, sport, "FA", s, c + 1)
    add(t + 0.01, client, server, sport, dport, "A", c + 1, s + 1)
    return packets


_REQUEST = b"GET / HTTP/1.1\r\nHost: intranet.example\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n"
_DAY = 86400.0
_DAY1 = 1764547200.0  # 2025-12-01


def _day(t0: float, ssh_banner: bytes, http_server: bytes) -> list[object]:
    reply = b"HTTP/1.1 200 OK\r\nServer: " + http_server + b"\r\nContent-Length: 2\r\n\r\nok"
    ssh = _scapy_session(t0, "10.0.0.9", "10.0.0.5", 40000, 22, ssh_banner + b"\r\n", b"SSH-2.0-OpenSSH_9.0\r\n",
                         server_first=True)  # fmt: skip
    return ssh + _scapy_session(t0 + 5, "10.0.0.9", "10.0.0.5", 40001, 80, _REQUEST, reply, server_first=False)


@pytest.fixture(scope="module")
def upgrade_store(zeek_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of one server: OpenSSH 7.4 and Apache, then OpenSSH 8.9p1 and nginx; and the
    corpus's TLS server moved onto the address of the sslh capture's, with another certificate."""
    if not ZEEK_CORPUS.is_dir():
        pytest.skip("../shared/zeek-corpus is not present")
    from scapy.all import IP, TCP, rdpcap, wrpcap

    root = tmp_path_factory.mktemp("upgrade")
    wrpcap(str(root / "day1.pcap"), _day(_DAY1, b"SSH-2.0-OpenSSH_7.4", b"Apache/2.4.41 (Ubuntu)"))
    wrpcap(str(root / "day2.pcap"), _day(_DAY1 + _DAY, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1", b"nginx/1.24.0"))
    moved = rdpcap(str(ZEEK_CORPUS / "pppoe-over-qinq-tls/pppoe-over-qinq.pcap"))
    for p in moved:
        if IP in p:
            p[IP].src = "192.168.2.230" if p[IP].src == "2.2.2.2" else p[IP].src
            p[IP].dst = "192.168.2.230" if p[IP].dst == "2.2.2.2" else p[IP].dst
            del p[IP].chksum
            if TCP in p:
                del p[TCP].chksum
    wrpcap(str(root / "moved.pcap"), moved)
    store = root / "store"
    for name in ("day1", "day2", "moved"):
        ingest_paths([_zeek(root / f"{name}.pcap", root / name, zeek_env)], store)
    ingest_paths([_zeek(ZEEK_CORPUS / CAPTURES[1], root / "sslh", zeek_env)], store)
    return store


def test_an_upgrade_between_two_captures_is_a_changed_port(upgrade_store: Path) -> None:
    result = runner.invoke(app, ["changed-ports", "--store", str(upgrade_store), "--nets", "all", "--since",
                                 "2000-01-01", "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    changes = {(r["server_h"], r["server_p"], r["what"]): r for r in json.loads(result.stdout)}
    ssh = changes[("10.0.0.5", 22, "software")]
    assert (ssh["before"], ssh["after"]) == ("OpenSSH 7.4", "OpenSSH 8.9p1")
    assert ssh["changed_at"].startswith("2025-12-02T00:00:00.03")
    web = changes[("10.0.0.5", 80, "software")]
    assert (web["before"], web["after"]) == ("Apache 2.4.41", "nginx 1.24.0")
    cert = changes[("192.168.2.230", 443, "certificate")]
    assert cert["before"].startswith("x230 [") and cert["after"].startswith("mzuserxp.itunes.apple.com [")
    assert len(changes) == 3  # nothing else changed (sslh's SSH and TLS on one port are not a change)
    # The range selects changes by when they happened; servers shows the software of the end of the range.
    inv = Inventory(upgrade_store, nets="all")
    assert inv.changed_ports("2025-12-03", "2026-01-01").empty
    before = inv.servers(None, "2025-12-02")
    assert before.loc[before["server_p"] == 22, "version"].tolist() == ["7.4"]
    after = inv.servers()
    assert after.loc[after["server_p"] == 22, "version"].tolist() == ["8.9p1"]


def test_the_daily_report_lists_changes_and_what_new_ports_are(upgrade_store: Path, tmp_path: Path) -> None:
    pages = {}
    for day in ("2025-12-01", "2025-12-02"):
        out = tmp_path / day
        out.mkdir()
        result = runner.invoke(app, ["report", "--store", str(upgrade_store), "--nets", "all", "--date", day,
                                     "-o", str(out)])  # fmt: skip
        assert result.exit_code == 0, result.output
        pages[day] = next(out.glob("*.html")).read_text()
    new = pages["2025-12-01"].split("<h2>New server ports</h2>")[1].split("<h2>")[0]
    # What the new ports were on their day, not what they became the next.
    assert "<th>identity</th>" in new and "OpenSSH 7.4" in new and "Apache 2.4.41" in new and "8.9p1" not in new
    assert "none" in pages["2025-12-01"].split("<h2>Changed server ports")[1].split("<h2>")[0]
    changed = pages["2025-12-02"].split("<h2>Changed server ports")[1].split("<h2>")[0]
    assert "OpenSSH 7.4" in changed and "OpenSSH 8.9p1" in changed and "nginx 1.24.0" in changed


def test_host_names_show_only_while_the_lease_held_the_address() -> None:
    """A DHCP name belongs to an address for its lease: a server row seen outside it does not get it."""
    t = pd.Timestamp("2026-11-21 10:00", tz="UTC")
    lease = {"kind": "lease", "host": "10.0.0.7", "name": "laptop-ann", "mac": "aa:bb:cc:dd:ee:ff",
             "first_seen": t, "last_seen": t + pd.Timedelta(hours=1), "seen": 1}  # fmt: skip
    facts = pa.Table.from_pylist([lease], schema=IDENTITY_SCHEMA)
    rows = pd.DataFrame({"server_h": ["10.0.0.7", "10.0.0.7", "10.0.0.8"], "server_p": [22, 22, 22],
                         "first_seen": [t + pd.Timedelta(minutes=30), t + pd.Timedelta(hours=2), t],
                         "last_seen": [t + pd.Timedelta(hours=3), t + pd.Timedelta(hours=3), t]})  # fmt: skip
    names = described(rows, facts)["host_names"].tolist()
    assert names == ["laptop-ann (dhcp 2026-11-21 10:00..2026-11-21 11:00)", "", ""]


def test_an_sni_no_certificate_names_is_marked_claimed() -> None:
    t = pd.Timestamp("2026-11-21 10:00", tz="UTC")
    common = {"first_seen": t, "last_seen": t, "seen": 1, "sensor": "s"}
    facts = pa.Table.from_pylist([
        {"kind": "tls", "host": "10.0.0.5", "port": 443, "name": "www.example.org", "fingerprint": "ab", **common},
        {"kind": "tls", "host": "10.0.0.5", "port": 443, "name": "evil.example", "fingerprint": "ab", **common},
        {"kind": "certificate", "fingerprint": "ab", "subject": "CN=www.example.org,O=Example",
         "names": ["www.example.org", "example.org"], **common},
    ], schema=IDENTITY_SCHEMA)  # fmt: skip
    rows = pd.DataFrame({"server_h": ["10.0.0.5"], "server_p": [443], "first_seen": [t], "last_seen": [t]})
    assert described(rows, facts)["tls_names"].tolist() == ["example.org, www.example.org, evil.example (sni)"]


_HOSTILE = st.text(st.characters(codec="utf-8"), max_size=400)
_JSON_VALUE = st.one_of(st.none(), _HOSTILE, st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                        st.lists(_HOSTILE, max_size=5), st.booleans())  # fmt: skip
_FIELDS = {
    "software": ["host", "host_p", "software_type", "name", "version.major", "version.addl", "unparsed_version"],
    "ssh": ["uid", "id.orig_h", "id.resp_h", "id.resp_p", "server", "client", "auth_attempts", "host_key"],
    "ssl": ["uid", "id.orig_h", "id.resp_h", "id.resp_p", "server_name", "cert_chain_fps", "ssl_history", "cipher"],
    "x509": ["fingerprint", "certificate.subject", "certificate.issuer", "certificate.not_valid_before",
             "certificate.not_valid_after", "san.dns", "client_cert"],
    "dhcp": ["mac", "assigned_addr", "host_name", "client_fqdn", "lease_time", "msg_types"],
    "dns": ["uid", "id.orig_h", "id.resp_h", "query", "answers", "TTLs", "rcode"],
}  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=st.sampled_from(sorted(_FIELDS)), lines=st.lists(st.dictionaries(st.sampled_from(
    sum(_FIELDS.values(), [])), _JSON_VALUE, max_size=8), min_size=1, max_size=6))  # fmt: skip
def test_hostile_json_identity_lines_never_break_an_ingest_or_a_query(
    tmp_path_factory: pytest.TempPathFactory, log: str, lines: list[dict[str, object]]
) -> None:
    folder = tmp_path_factory.mktemp("hostile")
    first = {"ts": 1764547200.5, **{f: "x" for f in _FIELDS[log]}, "host_p": 22, "id.resp_p": 22,
             "id.resp_h": "10.0.0.5", "host": "10.0.0.5", "assigned_addr": "10.0.0.5", "cert_chain_fps": ["ab"],
             "san.dns": ["a"], "msg_types": ["ACK"], "lease_time": 60.0, "software_type": "HTTP::SERVER",
             "server": "SSH-2.0-x_1", "client_cert": False, "version.major": 1, "id.orig_h": "10.0.0.9",
             "answers": ["10.0.0.5"], "TTLs": [60.0], "rcode": 0}  # fmt: skip
    first = {k: v for k, v in first.items() if k in ("ts", *_FIELDS[log])}
    body = [json.dumps(first)] + [json.dumps({"ts": 1764547201.0 + i, **line}) for i, line in enumerate(lines)]
    (folder / f"{log}.log").write_text("\n".join(body) + "\n")
    store = folder / "store"
    summary = ingest_paths([folder], store)
    assert not summary.errors, [e.message for e in summary.errors]
    assert summary.identities >= 1  # the first line is a fact of every log
    facts = take_snapshot(locate(store)).read_identity()
    for column in ("product", "version", "banner", "name", "subject", "issuer", "mac"):
        lengths = [len(v) for v in facts.column(column).to_pylist() if v is not None]
        assert all(n <= TEXT_CHARS for n in lengths)
    inv = Inventory(store, nets="all")
    assert inv.changed_ports(None).shape[1] == 8
    assert folded(described(pd.DataFrame({"server_h": ["10.0.0.5"], "server_p": [22], "first_seen": [pd.NaT],
                                          "last_seen": [pd.NaT]}), inv.identity_facts())).shape[0] == 1  # fmt: skip


@pytest.mark.parametrize(("chains", "fingerprints"), [
    ([[], [], []], {None}),
    ([["ab"], [], ["cd", "ef"]], {"ab", "cd", None}),
    ([[{"fp": "ab"}], [], [1]], None),  # whatever text a hostile list gives
])  # fmt: skip
def test_a_json_ssl_log_whose_certificate_lists_are_empty_or_odd_is_ingested(
    tmp_path: Path, chains: list[list[object]], fingerprints: set[str | None] | None
) -> None:
    """TLS 1.3 sends its certificates encrypted, so Zeek's JSON ssl.log has
    "cert_chain_fps": [] on every line of such traffic: Arrow reads a block
    of them as a list of nulls. Before, every ingest of one stopped with
    "internal error (ArrowInvalid: Invalid null value)". Lists of other
    values (a hostile log) give no fingerprint; the name is kept alike."""
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = [{"ts": 1764547200.5 + i, "uid": f"C{i}", "id.orig_h": "10.0.0.9", "id.orig_p": 40000 + i,
              "id.resp_h": "10.0.0.5", "id.resp_p": 443, "version": "TLSv13", "server_name": "example.org",
              "cert_chain_fps": chain, "established": True} for i, chain in enumerate(chains)]  # fmt: skip
    (folder / "ssl.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = ingest_paths([folder], tmp_path / "store")
    assert not summary.errors, [e.message for e in summary.errors]
    facts = take_snapshot(locate(tmp_path / "store")).read_identity().to_pylist()
    assert {(f["host"], f["port"], f["name"]) for f in facts} == {("10.0.0.5", 443, "example.org")}
    found = {f["fingerprint"] for f in facts}
    assert found == fingerprints if fingerprints is not None else all(f is None or isinstance(f, str) for f in found)


@pytest.mark.parametrize("form", ["zeek", "eve"])
def test_a_lease_or_ttl_of_a_fraction_of_a_microsecond_is_rounded(tmp_path: Path, form: str) -> None:
    """A DHCP lease of 0.0078125 s (7812.5 µs) and a DNS TTL of 1.1e-05 s
    (10.999... µs in floating point) end their facts at the rounded
    microsecond. Before, Arrow refused to truncate them and the ingest
    stopped with "internal error (... was truncated converting to int64)"
    (found by the hypothesis test of hostile identity lines)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    if form == "zeek":
        dhcp = {"ts": 1764547200.0, "mac": "aa:bb:cc:dd:ee:ff", "assigned_addr": "10.0.0.7", "host_name": "pc-7",
                "lease_time": 0.0078125}  # fmt: skip
        dns = {"ts": 1764547200.0, "uid": "C1", "id.orig_h": "10.0.0.9", "id.resp_h": "10.0.0.53",
               "query": "a.example", "answers": ["10.0.0.8"], "TTLs": [1.1e-05], "rcode": 0}  # fmt: skip
        (folder / "dhcp.log").write_text(json.dumps(dhcp) + "\n")
        (folder / "dns.log").write_text(json.dumps(dns) + "\n")
    else:
        base = {"timestamp": "2025-12-01T00:00:00.000000+0000", "src_ip": "10.0.0.1", "dest_ip": "10.0.0.2",
                "host": "s"}  # fmt: skip
        answer = {"rrname": "a.example", "rrtype": "A", "ttl": 1.1e-05, "rdata": "10.0.0.8"}
        events = [
            {**base, "event_type": "dhcp",
             "dhcp": {"type": "reply", "assigned_ip": "10.0.0.7", "hostname": "pc-7", "lease_time": 0.0078125}},
            {**base, "event_type": "dns",
             "dns": {"type": "answer", "rrname": "a.example", "version": 2, "answers": [answer]}},
        ]  # fmt: skip
        (folder / "eve.json").write_text("".join(json.dumps(e) + "\n" for e in events))
    summary = ingest_paths([folder], tmp_path / "store")
    assert not summary.errors, [e.message for e in summary.errors]
    facts = {f["host"]: f for f in take_snapshot(locate(tmp_path / "store")).read_identity().to_pylist()}
    lease, answer = facts["10.0.0.7"], facts["10.0.0.8"]
    assert (lease["last_seen"] - lease["first_seen"]).total_seconds() == 0.007812  # 7812.5 µs, rounded to even
    assert (answer["last_seen"] - answer["first_seen"]).total_seconds() == 0.000011


def test_hostile_identity_text_is_escaped_in_every_output(tmp_path: Path) -> None:
    """A product a server chose (its banner) reaches the terminal, CSV and HTML neutralized."""
    folder = tmp_path / "logs"
    folder.mkdir()
    conn = {"ts": 1764547200.0, "uid": "C1", "id.orig_h": "10.0.0.9", "id.orig_p": 40000, "id.resp_h": "10.0.0.5",
            "id.resp_p": 22, "proto": "tcp", "conn_state": "SF", "history": "ShADadFf", "orig_pkts": 5,
            "resp_pkts": 5}  # fmt: skip
    (folder / "conn.log").write_text(json.dumps(conn) + "\n")
    banner = "SSH-2.0-=cmd|\x1b[31m<b>x</b>_1.0 (a comment)"
    ssh = {"ts": 1764547200.1, "uid": "C1", "id.orig_h": "10.0.0.9", "id.orig_p": 40000, "id.resp_h": "10.0.0.5",
           "id.resp_p": 22, "server": banner, "client": "SSH-2.0-x", "auth_attempts": 0}  # fmt: skip
    (folder / "ssh.log").write_text(json.dumps(ssh) + "\n")
    store = tmp_path / "store"
    assert ingest_paths([folder], store).identities == 1
    table = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all"])
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "=cmd|" in table.stdout
    csv_out = runner.invoke(app, ["servers", "--store", str(store), "--nets", "all", "-f", "csv",
                                  "--columns", "server_h,product"])  # fmt: skip
    assert csv_out.stdout.splitlines()[1].startswith('"10.0.0.5","\'=cmd|')
    page = runner.invoke(app, ["host", "10.0.0.5", "--store", str(store), "-f", "html"])
    assert page.exit_code == 0 and "<b>x" not in page.stdout and "&lt;b&gt;x&lt;/b&gt;" in page.stdout


def test_columns_option_picks_and_orders_columns(corpus_store: Path) -> None:
    result = runner.invoke(app, ["servers", "--store", str(corpus_store), "--nets", "all", "--port", "22", "-f",
                                 "csv", "--columns", "product,server_h"])  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "product,server_h"
    bad = runner.invoke(app, ["servers", "--store", str(corpus_store), "--columns", "nope"])
    assert bad.exit_code != 0 and "no such column" in bad.output and "Traceback" not in bad.output


def test_every_identity_kind_has_a_reader() -> None:
    empty = pa.table({"ts": pa.array([], pa.timestamp("us", tz="UTC"))})
    for log in set(IDENTITY_KINDS.values()) - {"eve"}:
        assert normalize_identity(empty, log).schema == IDENTITY_SCHEMA


def _ssh_line(t: float, server: str, port: int, banner: str) -> str:
    return json.dumps({"ts": t, "uid": f"C{t}", "id.orig_h": "10.0.0.9", "id.orig_p": 40000, "id.resp_h": server,
                       "id.resp_p": port, "server": banner, "client": "SSH-2.0-x", "auth_attempts": 0})  # fmt: skip


def test_identity_files_are_merged_as_they_accumulate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hourly ssh logs, one identity file each, are merged in tiers: a store keeps a few files, the same facts."""
    from synack.ingest import identity_files

    logs = tmp_path / "logs"
    logs.mkdir()
    for hour in range(40):
        t = 1764547200.0 + hour * 3600
        other = _ssh_line(t + 1, f"10.0.1.{hour}", 22, f"SSH-2.0-dropbear_20{hour:02d}.1")
        lines = [_ssh_line(t, "10.0.0.5", 22, "SSH-2.0-OpenSSH_9.6"), other]
        (logs / f"ssh.{hour:02d}:00:00-{hour:02d}:59:59.log").write_text("\n".join(lines) + "\n")
    merged_store, plain_store = tmp_path / "merged", tmp_path / "plain"
    summary = ingest_paths([logs], merged_store)
    assert summary.identities == 80 and summary.merges >= 40
    monkeypatch.setattr(identity_files, "MERGE_FILES", 10_000)
    ingest_paths([logs], plain_store)
    merged, plain = take_snapshot(locate(merged_store)), take_snapshot(locate(plain_store))
    assert len(plain.state.under("identity")) == 40
    assert len(merged.state.under("identity")) < 8
    facts = {name: Inventory(s, nets="all").identity_facts().to_pylist() for name, s in (("m", merged), ("p", plain))}
    assert facts["m"] == facts["p"]
    one = [f for f in facts["m"] if f["host"] == "10.0.0.5"]
    assert len(one) == 1 and one[0]["seen"] == 40  # one fact, seen in every hour
    assert ingest_paths([logs], merged_store).identities == 0  # exactly once, merged or not


SURICATA_CORPUS = ZEEK_CORPUS.parent / "suricata-corpus"


def test_suricata_tls_events_name_their_servers(tmp_path: Path) -> None:
    """Every TLS event of a real eve.json: its server's row names the certificate's CN, or the SNI as claimed."""
    eve = SURICATA_CORPUS / "suricatalog-eve2" / "eve.json"
    if not eve.exists():
        pytest.skip("../shared/suricata-corpus is not present")
    store = tmp_path / "store"
    summary = ingest_paths([eve], store)
    assert summary.rows > 0 and summary.identities > 0 and not summary.errors
    servers = _servers_json(store)
    checked = 0
    for line in eve.read_text().splitlines():
        event = json.loads(line)
        if event.get("event_type") != "tls" or (event["dest_ip"], event["dest_port"]) not in servers:
            continue
        names = str(servers[(event["dest_ip"], event["dest_port"])]["tls_names"]).split(", ")
        subject = event["tls"].get("subject", "")
        cn = [p.strip()[3:] for p in subject.split(",") if p.strip().startswith("CN=")]
        sni = event["tls"].get("sni")
        if not cn and not sni:
            continue  # a resumed session shows neither
        assert (cn and cn[0] in names) or (sni and (sni in names or f"{sni} (sni)" in names)), (event["tls"], names)
        checked += 1
    assert checked >= 100
    assert ingest_paths([eve], store).identities == 0  # exactly once


def test_an_eve_file_read_for_flows_before_gets_its_identity_events_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An eve.json an older synack read to its end (flows only): the next ingest reads its identity events, once."""
    from synack.ingest import conn_ingest

    flow = {"timestamp": "2025-12-01T00:00:00.100000+0000", "flow_id": 1, "event_type": "flow", "src_ip": "10.0.0.9",
            "src_port": 40000, "dest_ip": "10.0.0.5", "dest_port": 22, "proto": "TCP", "app_proto": "ssh",
            "flow": {"pkts_toserver": 5, "pkts_toclient": 5, "bytes_toserver": 500, "bytes_toclient": 900,
                     "start": "2025-12-01T00:00:00.000000+0000", "end": "2025-12-01T00:00:01.000000+0000",
                     "state": "closed", "reason": "timeout"},
            "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "state": "closed"}}  # fmt: skip
    ssh = {"timestamp": "2025-12-01T00:00:00.200000+0000", "flow_id": 1, "event_type": "ssh", "src_ip": "10.0.0.9",
           "src_port": 40000, "dest_ip": "10.0.0.5", "dest_port": 22, "proto": "TCP",
           "ssh": {"client": {"proto_version": "2.0", "software_version": "OpenSSH_9.0"},
                   "server": {"proto_version": "2.0", "software_version": "OpenSSH_8.9p1 Ubuntu-3"}}}  # fmt: skip
    dhcp = {"timestamp": "2025-11-30T23:59:00.300000+0000", "event_type": "dhcp", "src_ip": "10.0.0.1",
            "dest_ip": "10.0.0.5", "proto": "UDP", "dhcp": {"type": "reply", "assigned_ip": "10.0.0.5",
            "hostname": "build-7", "client_mac": "aa:bb:cc:00:11:22", "lease_time": 3600}}  # fmt: skip
    bad = '{"timestamp": "2025-12-01T00:00:01+0000", "event_type": "tls", "dest_port": 70000}'
    eve = tmp_path / "eve.json"
    eve.write_text("\n".join([json.dumps(flow), json.dumps(ssh), json.dumps(dhcp), bad]) + "\n")
    store = tmp_path / "store"
    monkeypatch.setattr(conn_ingest, "has_twin", lambda path, kind: False)  # what an older synack did
    assert ingest_paths([eve], store).identities == 0
    monkeypatch.undo()
    upgraded = ingest_paths([eve], store)
    assert (upgraded.rows, upgraded.identities, upgraded.quarantined) == (0, 2, 1)  # the bad tls line set aside
    assert ingest_paths([eve], store).identities == 0
    row = Inventory(store, nets="all").servers().iloc[0]
    assert (row["product"], row["version"]) == ("OpenSSH", "8.9p1")
    assert row["host_names"] == "build-7 (dhcp 2025-11-30 23:59..2025-12-01 00:59)"


_EVE_SECTIONS = {
    "tls": ["subject", "issuerdn", "fingerprint", "sni", "notbefore", "notafter"],
    "ssh": ["server"],
    "dhcp": ["type", "assigned_ip", "hostname", "client_mac", "lease_time"],
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.sampled_from(sorted(_EVE_SECTIONS)), values=st.lists(st.dictionaries(
    st.sampled_from(sum(_EVE_SECTIONS.values(), [])), _JSON_VALUE, max_size=6), min_size=1, max_size=5),
    dest=st.one_of(st.just("10.0.0.5"), _HOSTILE, st.integers(-5, 2**40)))  # fmt: skip
def test_hostile_eve_identity_events_never_break_an_ingest_or_a_query(
    tmp_path_factory: pytest.TempPathFactory, event: str, values: list[dict[str, object]], dest: object
) -> None:
    folder = tmp_path_factory.mktemp("hostile-eve")
    lines = []
    for i, section in enumerate(values):
        body: dict[str, object] = dict(section)
        if event == "ssh":
            body = {"server": {"software_version": section.get("server")}}
        lines.append(json.dumps({"timestamp": f"2025-12-01T00:00:{i:02d}.000000+0000", "event_type": event,
                                 "src_ip": "10.0.0.9", "dest_ip": dest, "dest_port": 443, event: body}))  # fmt: skip
    (folder / "eve.json").write_text("\n".join(lines) + "\n")
    store = folder / "store"
    summary = ingest_paths([folder], store)
    assert not summary.errors, [e.message for e in summary.errors]
    assert summary.identities + summary.quarantined <= 2 * len(lines)
    inv = Inventory(store, nets="all")
    facts = inv.identity_facts()
    for column in ("product", "version", "banner", "name", "subject", "issuer", "mac"):
        assert all(len(v) <= TEXT_CHARS for v in facts.column(column).to_pylist() if v is not None)
    assert inv.changed_ports(None).shape[1] == 8


@pytest.mark.parametrize("bad_first", [False, True])
def test_an_eve_line_set_aside_takes_only_its_own_facts(tmp_path: Path, bad_first: bool) -> None:
    """A block of identity events where a line is set aside (no time): the
    other lines' facts are all kept, its own none. Before, the block's
    facts (a TLS event gives two: its name and its certificate) were
    filtered by the lines' reasons: an internal error ("Filter inputs must
    all be the same length") when the counts differed, and the wrong facts
    dropped when they did not (found by an ad-hoc fuzz of eve.json identity
    events)."""
    tls = {
        "timestamp": "2025-12-01T00:00:00.000000+0000",
        "event_type": "tls",
        "src_ip": "10.0.0.9",
        "dest_ip": "10.0.0.5",
        "dest_port": 443,
        "tls": {"sni": "example.org", "fingerprint": "aa:bb", "subject": "CN=example.org", "issuerdn": "CN=ca"},
    }
    bad = {"timestamp": None, "event_type": "dhcp", "src_ip": "10.0.0.1", "dest_ip": "10.0.0.2", "dest_port": 67,
           "dhcp": {"type": "reply", "assigned_ip": "10.0.0.7", "hostname": "pc-7"}}  # fmt: skip
    lines = [bad, tls] if bad_first else [tls, bad]
    (tmp_path / "eve.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = ingest_paths([tmp_path / "eve.json"], tmp_path / "store")
    assert not summary.errors, [e.message for e in summary.errors]
    assert summary.quarantined == 1
    facts = take_snapshot(locate(tmp_path / "store")).read_identity().to_pylist()
    assert sorted((f["kind"], f["name"], f["fingerprint"]) for f in facts) == [
        ("certificate", None, "aa:bb"), ("tls", "example.org", "aa:bb")]  # fmt: skip


def test_watch_follows_identity_logs(corpus_logs: Path, tmp_path: Path) -> None:
    """A watched log directory: its ssl.log and x509.log are read beside conn.log, once."""
    import threading

    from synack.ingest.watch import WatchOptions, watch

    logdir = tmp_path / "current"
    shutil.copytree(corpus_logs / "imap-starttls", logdir)
    store = tmp_path / "store"
    events: list[dict[str, object]] = []
    watch(logdir, store, WatchOptions(once=True), stop=threading.Event(), log=events.append)
    ingested = {Path(str(e["file"])).name: e for e in events if e.get("event") == "ingested"}
    assert ingested["ssl.log"]["identities"] == 1 and ingested["x509.log"]["identities"] == 1
    assert "imap.gmx.net" in Inventory(store, nets="all").servers()["tls_names"].str.cat()


def test_suricata_dns_answers_name_their_addresses(tmp_path: Path) -> None:
    """Every DNS name a server row shows was the query of an answer with that address, and the answered names show."""
    eve = SURICATA_CORPUS / "slips-test6" / "eve.json"
    if not eve.exists():
        pytest.skip("../shared/suricata-corpus is not present")
    answered: dict[str, set[str]] = {}
    for line in eve.read_text().splitlines():
        event = json.loads(line)
        dns = event.get("dns", {}) if event.get("event_type") == "dns" else {}
        for answer in dns.get("answers", []):
            if answer.get("rrtype") in ("A", "AAAA"):
                answered.setdefault(answer["rdata"], set()).add(dns["rrname"])
    store = tmp_path / "store"
    ingest_paths([eve], store)
    shown = 0
    for (host, _port), row in _servers_json(store).items():
        names = {text.split(" (dns ")[0] for text in str(row["host_names"]).split(", ") if " (dns " in text}
        assert names <= answered.get(host, set()), (host, names)
        if host in answered and len(answered[host]) <= 16:
            assert names == answered[host], (host, names, answered[host])
            shown += 1
    assert shown >= 3


def test_a_suricata_dns_event_without_queries_is_no_bad_line(tmp_path: Path) -> None:
    """EVE dns v3 with an empty `queries` list (a response to a malformed query): its answers name
    nothing, and the line is not quarantined (it was: "Index 0 is out of bounds")."""
    answer = {"rrname": "b.example", "rrtype": "A", "ttl": 60, "rdata": "10.0.0.6"}
    events = [{"timestamp": "2025-12-01T00:00:00.000000+0000", "event_type": "dns", "src_ip": "10.0.0.1",
               "dest_ip": "10.0.0.9", "dest_port": 53,
               "dns": {"version": 3, "type": "response", "queries": queries, "answers": [answer]}}
              for queries in ([], None, [{"rrname": "b.example"}])]  # fmt: skip
    eve = tmp_path / "eve.json"
    eve.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    summary = ingest_paths([eve], tmp_path / "store")
    assert (summary.quarantined, summary.identities) == (0, 1)
    (fact,) = take_snapshot(locate(tmp_path / "store")).read_identity().to_pylist()
    assert (fact["host"], fact["name"], fact["seen"]) == ("10.0.0.6", "b.example", 1)


def test_a_json_port_column_made_float_by_one_line_keeps_its_whole_ports(tmp_path: Path) -> None:
    """Hypothesis found it: a later software.log line writing `host_p` as 0.0 made the column a double,
    and every port of the file, 22 included, was dropped (0 facts, the file 'unchanged')."""
    server = {"software_type": "HTTP::SERVER", "name": "x", "unparsed_version": "x/1.0"}
    lines = [{"ts": 1764547200.5, "host": "10.0.0.5", "host_p": 22, **server}, {"ts": 1764547201.0, "host_p": 0.0},
             {"ts": 1764547202.0, "host": "10.0.0.6", "host_p": 80.5, **server}]  # fmt: skip
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "software.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = ingest_paths([tmp_path / "logs"], tmp_path / "store")
    assert summary.identities == 1 and not summary.errors  # 80.5 is no port: that fact is dropped
    facts = Inventory(tmp_path / "store", nets="all").identity_facts()
    assert facts.column("port").to_pylist() == [22]
