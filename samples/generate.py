"""Deterministic generator of the bundled sample Zeek log directory.

Writes `samples/zeek/` in zeekctl's layout: dated archive folders of
rotated `conn.HH:MM:SS-HH:MM:SS.log.gz` (Zeek ASCII, with synack's Zeek
package columns `handshake`, `synack_ts`, `server_reply`, `sensor`), one
archive written by a stock sensor with `LogAscii::use_json=T`, a `dns` log
that ingest must skip, and the live `current/conn.log` of the last day.

Planted facts (the tests check them, see PLANTED):

* TCP servers on IPv4 and IPv6, UDP servers (DNS, NTP), banners
* a port scan (S0, unanswered), closed ports (REJ), a flipped connection
  (`^hADad`), a server seen only as originator of the SYN-ACK (`H`),
  mid-stream pickups that never count as servers, multicast and ICMP
* a server port first seen on the last day (in the live log)

Run `python -m synack.samples.generate` to rewrite the files; output is
byte-identical from run to run.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synack.ingest.schema import SYNACK_CONN_FIELDS, ZEEK_CONN_FIELDS

OUT = Path(__file__).resolve().parent / "zeek"
DAYS = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
HOURS = [(9, 10), (10, 11), (14, 15)]
SENSOR = "edge-1"
JSON_SENSOR = "core-2"
JSON_ARCHIVE = (dt.date(2026, 11, 19), (12, 13))

CONN_FIELDS = [*ZEEK_CONN_FIELDS, *SYNACK_CONN_FIELDS]

#: What the samples contain, for tests: (server_h, proto, server_p).
PLANTED: dict[str, Any] = {
    "tcp_servers": {
        ("10.1.0.10", "tcp", 80),
        ("10.1.0.10", "tcp", 443),
        ("10.1.0.25", "tcp", 21),
        ("10.1.0.11", "tcp", 22),
        ("10.1.0.20", "tcp", 25),
        ("fd00:10::5", "tcp", 8080),
        ("10.1.0.30", "tcp", 3389),
        ("93.184.216.34", "tcp", 443),
        ("10.1.0.11", "tcp", 8443),
    },
    "udp_servers": {("10.1.0.53", "udp", 53), ("10.1.0.123", "udp", 123)},
    "closed": {("10.1.0.10", "tcp", 23), ("10.1.0.20", "tcp", 110)},
    "scan_source": "10.1.0.66",
    "scan_target": "10.1.0.12",
    "midstream_only": ("10.1.0.40", "tcp", 9100),
    "flipped": ("10.1.0.10", "tcp", 443),
    "orig_is_server": ("10.1.0.30", "tcp", 3389),
    "new_on_last_day": {("10.1.0.11", "tcp", 8443)},
    "gone_after_day_2": {("10.1.0.25", "tcp", 21)},
    "last_day": DAYS[-1].isoformat(),
    "banners": {
        ("10.1.0.11", 22): b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n",
        ("10.1.0.20", 25): b"220 mail.example.lan ESMTP Postfix\r\n",
        ("10.1.0.11", 8443): b"HTTP/1.1 400 Bad Request\r\nServer: <script>\\x41</script>\t=cmd|' /C calc'!A0\r\n",
    },
}

CLIENTS = ["10.1.0.101", "10.1.0.102", "10.1.0.103", "10.1.0.104"]
V6_CLIENTS = ["fd00:10::101", "fd00:10::102"]


@dataclass
class Conn:
    """One conn.log row, before formatting."""

    ts: float
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str
    service: str | None
    conn_state: str
    history: str | None
    orig_pkts: int
    resp_pkts: int
    handshake: str | None
    reply: bytes | None = None
    duration: float | None = None


def _zeek_escape(value: bytes) -> str:
    """Escape bytes the way Zeek's ASCII writer does (backslash, non-printables, tab)."""
    out = []
    for b in value:
        if b == 0x5C:
            out.append("\\\\")
        elif b < 0x20 or b >= 0x7F:
            out.append(f"\\x{b:02x}")
        else:
            out.append(chr(b))
    return "".join(out)


def _hour_conns(rng: random.Random, day: dt.date, hour: int, last_day: bool) -> list[Conn]:
    base = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp()
    conns: list[Conn] = []

    def t() -> float:
        return base + rng.randrange(0, 3_600_000_000) / 1e6

    def tcp_open(client: str, server: str, port: int, service: str | None, reply: bytes | None) -> Conn:
        return Conn(
            t(),
            client,
            rng.randrange(32768, 61000),
            server,
            port,
            "tcp",
            service,
            "SF",
            "ShADadFf",
            rng.randrange(5, 30),
            rng.randrange(4, 30),
            "open",
            reply,
            round(rng.uniform(0.01, 5.0), 6),
        )

    for _ in range(rng.randrange(6, 12)):
        c = rng.choice(CLIENTS)
        conns.append(tcp_open(c, "10.1.0.10", 80, "http", b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n"))
        conns.append(tcp_open(c, "10.1.0.10", 443, "ssl", b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03"))
        conns.append(tcp_open(c, "93.184.216.34", 443, "ssl", b"\x16\x03\x03\x00\x7a\x02\x00"))
    for _ in range(rng.randrange(2, 5)):
        conns.append(tcp_open(rng.choice(CLIENTS), "10.1.0.11", 22, "ssh", PLANTED["banners"][("10.1.0.11", 22)]))
        conns.append(tcp_open(rng.choice(CLIENTS), "10.1.0.20", 25, "smtp", PLANTED["banners"][("10.1.0.20", 25)]))
        conns.append(tcp_open(rng.choice(V6_CLIENTS), "fd00:10::5", 8080, "http", b"HTTP/1.1 302 Found\r\n"))
    for _ in range(rng.randrange(5, 10)):
        c = rng.choice(CLIENTS)
        conns.append(
            Conn(
                t(),
                c,
                rng.randrange(32768, 61000),
                "10.1.0.53",
                53,
                "udp",
                "dns",
                "SF",
                "Dd",
                1,
                1,
                "answered",
                b"\x12\x34\x81\x80\x00\x01",
                0.0004,
            )
        )
    conns.append(
        Conn(
            t(),
            "10.1.0.101",
            123,
            "10.1.0.123",
            123,
            "udp",
            "ntp",
            "SF",
            "Dd",
            1,
            1,
            "answered",
            b"\x24\x02\x03\xe8",
            0.0011,
        )
    )
    # Unanswered UDP, multicast, ICMP: never servers.
    conns.append(
        Conn(
            t(),
            "10.1.0.102",
            rng.randrange(32768, 61000),
            "10.1.0.200",
            161,
            "udp",
            "snmp",
            "S0",
            "D",
            1,
            0,
            "unanswered",
        )
    )
    conns.append(Conn(t(), "10.1.0.103", 5353, "224.0.0.251", 5353, "udp", "dns", "S0", "D", 1, 0, "unanswered"))
    conns.append(Conn(t(), "10.1.0.101", 8, "10.1.0.1", 0, "icmp", None, "OTH", None, 1, 1, None))
    # Flipped: Zeek saw the SYN-ACK first and swapped the endpoints (^).
    conns.append(
        Conn(
            t(),
            "10.1.0.104",
            rng.randrange(32768, 61000),
            "10.1.0.10",
            443,
            "tcp",
            "ssl",
            "SF",
            "^hADadfF",
            8,
            9,
            "open",
            b"\x16\x03\x03\x00\x5a",
            1.2,
        )
    )
    # Server seen only as the originator of the SYN-ACK (H, no flip).
    conns.append(
        Conn(
            t(),
            "10.1.0.30",
            3389,
            "10.1.0.102",
            rng.randrange(49152, 65000),
            "tcp",
            None,
            "SH",
            "HcADF",
            3,
            0,
            "open_orig",
            None,
            0.2,
        )
    )
    # Mid-stream pickup: no SYN, no SYN-ACK.
    conns.append(
        Conn(
            t(),
            "10.1.0.103",
            rng.randrange(32768, 61000),
            "10.1.0.40",
            9100,
            "tcp",
            None,
            "OTH",
            "DdA",
            4,
            3,
            "midstream",
            None,
            3.0,
        )
    )
    # Closed ports: SYN answered by RST.
    for host, port in (("10.1.0.10", 23), ("10.1.0.20", 110)):
        conns.append(
            Conn(t(), rng.choice(CLIENTS), rng.randrange(32768, 61000), host, port, "tcp", None, "REJ", "Sr", 1, 1,
                 "rejected", None, 0.0002)
        )  # fmt: skip
    if hour == 10:
        # A port scan: SYNs to many ports, no answer.
        for port in range(1, 61):
            conns.append(
                Conn(t(), "10.1.0.66", 40000 + port, "10.1.0.12", port, "tcp", None, "S0", "S", 1, 0, "unanswered")
            )
    if day <= DAYS[1] and hour == 9:
        # An FTP server that goes quiet after the second day.
        conns.append(tcp_open("10.1.0.102", "10.1.0.25", 21, "ftp", b"220 (vsFTPd 3.0.5)\r\n"))
    if last_day:
        for _ in range(3):
            conns.append(
                tcp_open(rng.choice(CLIENTS), "10.1.0.11", 8443, None, PLANTED["banners"][("10.1.0.11", 8443)])
            )
    conns.sort(key=lambda c: c.ts)
    return conns


def _uid(rng: random.Random) -> str:
    return "C" + "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(17)
    )


def _values(c: Conn, uid: str, sensor: str) -> dict[str, object]:
    synack_ts = c.ts + 0.000412 if c.handshake in ("open", "open_orig") else None
    return {
        "ts": c.ts,
        "uid": uid,
        "id.orig_h": c.orig_h,
        "id.orig_p": c.orig_p,
        "id.resp_h": c.resp_h,
        "id.resp_p": c.resp_p,
        "proto": c.proto,
        "service": c.service,
        "duration": c.duration,
        "orig_bytes": (c.orig_pkts - 1) * 80 if c.duration is not None else None,
        "resp_bytes": max(c.resp_pkts - 1, 0) * 400 if c.duration is not None else None,
        "conn_state": c.conn_state,
        "local_orig": c.orig_h.startswith(("10.", "fd00")),
        "local_resp": c.resp_h.startswith(("10.", "fd00")),
        "missed_bytes": 0,
        "history": c.history,
        "orig_pkts": c.orig_pkts,
        "orig_ip_bytes": c.orig_pkts * 60,
        "resp_pkts": c.resp_pkts,
        "resp_ip_bytes": c.resp_pkts * 60,
        "tunnel_parents": None,
        "ip_proto": {"tcp": 6, "udp": 17, "icmp": 1}[c.proto],
        "handshake": c.handshake,
        "synack_ts": synack_ts,
        "server_reply": c.reply,
        "sensor": sensor,
    }


def _ascii_value(v: object, ztype: str) -> str:
    if v is None:
        return "-"
    if ztype == "time":
        return f"{v:.6f}"
    if ztype == "interval":
        return f"{v:.6f}"
    if ztype == "bool":
        return "T" if v else "F"
    if isinstance(v, bytes):
        return _zeek_escape(v) if v else "(empty)"
    return str(v)


def zeek_header(path: str, fields: list[tuple[str, str]], opened: str) -> str:
    """The header block Zeek's ASCII writer opens a log with (tab-separated,
    `,` for sets, the default empty and unset markers); `opened` as
    YYYY-MM-DD-HH-MM-SS."""
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        f"#path\t{path}\n#open\t{opened}\n"
        f"#fields\t{chr(9).join(n for n, _ in fields)}\n#types\t{chr(9).join(t for _, t in fields)}\n"
    )


def _ascii_log(rows: list[dict[str, object]], opened: dt.datetime, closed: dt.datetime | None) -> bytes:
    out = io.StringIO()
    out.write(zeek_header("conn", CONN_FIELDS, f"{opened:%Y-%m-%d-%H-%M-%S}"))
    for row in rows:
        out.write("\t".join(_ascii_value(row[n], t) for n, t in CONN_FIELDS) + "\n")
    if closed is not None:
        out.write(f"#close\t{closed:%Y-%m-%d-%H-%M-%S}\n")
    return out.getvalue().encode()


def _json_log(rows: list[dict[str, object]]) -> bytes:
    lines = []
    for row in rows:
        obj: dict[str, object] = {"_system_name": row["sensor"]}  # Log::default_ext_func's extension field
        for name, _ in ZEEK_CONN_FIELDS:  # a stock sensor: no synack columns
            v = row[name]
            if v is not None:
                obj[name] = v
        lines.append(json.dumps(obj, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _dns_log(day: dt.date) -> bytes:
    fields = [("ts", "time"), ("uid", "string"), ("query", "string")]
    nine = dt.datetime(day.year, day.month, day.day, 9, tzinfo=dt.UTC)
    return (
        zeek_header("dns", fields, f"{day:%Y-%m-%d}-09-00-00") + f"{nine.timestamp():.6f}\tCx\texample.lan\n"
    ).encode()


def generate(out: Path = OUT) -> list[Path]:
    """Write the sample directory under `out`; return the files written."""
    rng = random.Random(20261121)
    written: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    for day in DAYS:
        last = day == DAYS[-1]
        slots = HOURS + ([JSON_ARCHIVE[1]] if day == JSON_ARCHIVE[0] else [])
        for start, end in sorted(slots):
            conns = _hour_conns(rng, day, start, last)
            is_json = (day, (start, end)) == JSON_ARCHIVE
            rows = [_values(c, _uid(rng), JSON_SENSOR if is_json else SENSOR) for c in conns]
            opened = dt.datetime(day.year, day.month, day.day, start)
            closed = dt.datetime(day.year, day.month, day.day, end) if end < 24 else None
            if last and start == HOURS[-1][0]:
                write(out / "current" / "conn.log", _ascii_log(rows, opened, None))
                continue
            name = f"conn.{start:02d}:00:00-{end:02d}:00:00.log.gz"
            data = _json_log(rows) if is_json else _ascii_log(rows, opened, closed)
            write(out / day.isoformat() / name, _gzip(data))
        write(out / day.isoformat() / "dns.09:00:00-10:00:00.log.gz", _gzip(_dns_log(day)))
    return written


if __name__ == "__main__":
    for p in generate():
        print(p.relative_to(OUT.parent))
