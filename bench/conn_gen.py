"""Generate a large, realistic Zeek conn.log (ASCII) quickly, column by column.

The mix resembles an enterprise sensor: ~60% TCP (mostly complete
handshakes with a server reply, some scans, rejects and mid-stream
pickups), ~35% UDP (DNS mostly), ~5% ICMP; a few thousand internal
hosts and tens of thousands of external ones, popularity Zipf-distributed; synack's Zeek package
columns (handshake, synack_ts, server_reply, sensor) included.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from synack.ingest.schema import SYNACK_CONN_FIELDS, ZEEK_CONN_FIELDS
from synack.samples.generate import zeek_header

FIELDS = [*ZEEK_CONN_FIELDS, *SYNACK_CONN_FIELDS]

# (proto, service, conn_state, history, handshake, resp_port pool, share)
KINDS = [
    ("tcp", "ssl", "SF", "ShADadFf", "open", [443], 0.30),
    ("tcp", "http", "SF", "ShADadfF", "open", [80, 8080], 0.12),
    ("tcp", "-", "SF", "ShADadFf", "open", [22, 25, 445, 3389, 5432], 0.06),
    ("tcp", "-", "S0", "S", "unanswered", list(range(1, 1024)), 0.06),
    ("tcp", "-", "REJ", "Sr", "rejected", list(range(1, 1024)), 0.03),
    ("tcp", "-", "OTH", "DdA", "midstream", [443, 80, 9100], 0.02),
    ("tcp", "ssl", "SF", "^hADadfF", "open", [443], 0.01),
    ("udp", "dns", "SF", "Dd", "answered", [53], 0.28),
    ("udp", "ntp", "SF", "Dd", "answered", [123], 0.03),
    ("udp", "-", "S0", "D", "unanswered", [161, 137, 5353], 0.04),
    ("icmp", "-", "OTH", "-", "-", [0], 0.05),
]

BANNERS = [
    "HTTP/1.1 200 OK\\x0d\\x0aServer: nginx\\x0d\\x0a",
    "HTTP/1.1 301 Moved Permanently\\x0d\\x0a",
    "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\\x0d\\x0a",
    "220 mail.example.com ESMTP Postfix\\x0d\\x0a",
    "\\x16\\x03\\x03\\x00Z\\x02\\x00\\x00V\\x03\\x03",
    "\\x16\\x03\\x03\\x00z\\x02\\x00\\x00v\\x03\\x03\\x8c",
    "\\x124\\x81\\x80\\x00\\x01\\x00\\x01",
]


def _ipv4(base: int, ids: np.ndarray) -> pa.Array:
    n = ids + base
    parts = [pc.cast(pa.array((n >> s) & 255), pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def _fixed(values: np.ndarray, decimals: int) -> pa.Array:
    """Format non-negative floats like Zeek's %.6f, vectorized."""
    scale = 10**decimals
    micros = np.round(values * scale).astype(np.int64)
    whole = pc.cast(pa.array(micros // scale), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(micros % scale), pa.string()), decimals, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


#: Log shapes: (internal hosts, external peers, internal servers, scan share multiplier, scanned ports).
#: "enterprise" is the default mix; "wide" has ten times the hosts and pairs and about 11% scans of every port.
SHAPES = {"enterprise": (2000, 20000, 150, 1.0, 1024), "wide": (20000, 200000, 5000, 1.25, 65536)}


def conn_table(rows: int, seed: int, start: float = 1795000000.0, span: float = 3600.0,
               shape: str = "enterprise") -> pa.Table:  # fmt: skip
    """A table of `rows` conn.log rows of a SHAPES shape, every column already Zeek-formatted text."""
    rng = np.random.default_rng(seed)
    hosts, peers, servers, scans, scanned = SHAPES[shape]
    shares = np.array([k[-1] * (scans if k[4] in ("unanswered", "rejected") and k[0] == "tcp" else 1) for k in KINDS])
    kind = rng.choice(len(KINDS), size=rows, p=shares / shares.sum())
    pick = lambda values: pa.array(np.array(values, dtype=object)[kind])  # noqa: E731
    ts = start + np.sort(rng.uniform(0, span, rows))
    internal = rng.integers(0, hosts, rows)
    outbound = rng.random(rows) < 0.6
    # Destinations are heavy-tailed, as on real networks: a few popular
    # servers get most connections (Zipf), the rest a long tail.
    external = (rng.zipf(1.2, rows) - 1) % peers
    server_internal = (rng.zipf(1.5, rows) - 1) % servers
    resp_ids = np.where(outbound, external, server_internal)
    orig_h = _ipv4(0x0A000000, internal)
    resp_h = pc.if_else(pa.array(outbound), _ipv4(0x5DB80000, resp_ids), _ipv4(0x0A010000, resp_ids))
    resp_p = np.empty(rows, dtype=np.int64)
    for i, k in enumerate(KINDS):
        sel = kind == i
        ports = np.arange(1, scanned) if k[4] in ("unanswered", "rejected") and k[0] == "tcp" else np.array(k[5])
        resp_p[sel] = rng.choice(ports, size=int(sel.sum()))
    proto = pick([k[0] for k in KINDS])
    is_icmp = pc.equal(proto, "icmp")
    opened = pc.is_in(pick([k[4] for k in KINDS]), pa.array(["open", "answered"]))
    dur = rng.exponential(2.0, rows)
    ob = rng.integers(40, 20000, rows)
    rb = rng.integers(40, 200000, rows)
    op = rng.integers(1, 60, rows)
    rp = np.where(opened.to_numpy(zero_copy_only=False), rng.integers(1, 80, rows), 0)
    dash = pa.scalar("-")
    uid_chars = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", np.uint8)
    uid_bytes = np.full((rows, 18), ord("C"), np.uint8)
    uid_bytes[:, 1:] = uid_chars[rng.integers(0, len(uid_chars), (rows, 17))]
    uid = pa.array(uid_bytes.view("S18").ravel()).cast(pa.string())
    banner = pa.array(np.array(BANNERS, dtype=object)[rng.integers(0, len(BANNERS), rows)])
    reply = pc.if_else(pc.and_(opened, pc.invert(is_icmp)), banner, dash)
    synack = pc.if_else(pc.equal(pick([k[4] for k in KINDS]), "open"), _fixed(ts + 0.0004, 6), dash)
    icmp_or = lambda arr: pc.if_else(is_icmp, dash, arr)  # noqa: E731
    columns = {
        "ts": _fixed(ts, 6),
        "uid": uid,
        "id.orig_h": orig_h,
        "id.orig_p": pc.cast(
            pa.array(np.where(is_icmp.to_numpy(zero_copy_only=False), 8, rng.integers(32768, 61000, rows))), pa.string()
        ),
        "id.resp_h": resp_h,
        "id.resp_p": pc.cast(pa.array(resp_p), pa.string()),
        "proto": proto,
        "service": pick([k[1] for k in KINDS]),
        "duration": pc.if_else(opened, _fixed(dur, 6), dash),
        "orig_bytes": pc.if_else(opened, pc.cast(pa.array(ob), pa.string()), dash),
        "resp_bytes": pc.if_else(opened, pc.cast(pa.array(rb), pa.string()), dash),
        "conn_state": pick([k[2] for k in KINDS]),
        "local_orig": pa.array(np.full(rows, "T", dtype=object)),
        "local_resp": pc.if_else(pa.array(outbound), "F", "T"),
        "missed_bytes": pa.array(np.full(rows, "0", dtype=object)),
        "history": icmp_or(pick([k[3] for k in KINDS])),
        "orig_pkts": pc.cast(pa.array(op), pa.string()),
        "orig_ip_bytes": pc.cast(pa.array(op * 60 + ob), pa.string()),
        "resp_pkts": pc.cast(pa.array(rp), pa.string()),
        "resp_ip_bytes": pc.cast(pa.array(rp * 60), pa.string()),
        "tunnel_parents": pa.array(np.full(rows, "-", dtype=object)),
        "ip_proto": pc.if_else(is_icmp, "1", pc.if_else(pc.equal(proto, "udp"), "17", "6")),
        "handshake": icmp_or(pick([k[4] for k in KINDS])),
        "synack_ts": synack,
        "server_reply": reply,
        "sensor": pa.array(np.full(rows, "edge-1", dtype=object)),
    }
    return pa.table({name: columns[name].cast(pa.string()) for name, _ in FIELDS})


def header(opened: str = "2026-11-21-10-00-00") -> bytes:
    return zeek_header("conn", FIELDS, opened).encode()


def write_conn_log(
    path: Path,
    rows: int,
    seed: int = 1,
    batch: int = 500_000,
    start: float | None = None,
    span: float | None = None,
    shape: str = "enterprise",
) -> Path:
    """Write a conn.log of `rows` rows to `path` (with header and #close).

    With `start` and `span` the rows spread over [start, start + span)
    seconds in order; by default each batch covers an hour.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with open(path, "wb") as f:
        opened = dt.datetime.fromtimestamp(start or 1795000000.0, dt.UTC)
        f.write(header(f"{opened:%Y-%m-%d-%H-%M-%S}"))
        done = 0
        while done < rows:
            n = min(batch, rows - done)
            sink = pa.BufferOutputStream()
            if start is not None and span is not None:
                table = conn_table(n, seed + done, start + span * done / rows, span * n / rows, shape)
            else:
                table = conn_table(n, seed + done, 1795000000.0 + done / 100, shape=shape)
            pacsv.write_csv(table, sink, options)
            f.write(sink.getvalue().to_pybytes())
            done += n
        f.write(b"#close\t2026-11-21-11-00-00\n")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("rows", type=int)
    args = parser.parse_args()
    write_conn_log(args.path, args.rows)
