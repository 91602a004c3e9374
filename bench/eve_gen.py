"""Generate a large Suricata eve.json: about half flow events, the rest
alert, dns, tls, http and stats events, as a busy sensor writes them."""

from __future__ import annotations

import json
import random
from pathlib import Path


def write_eve(path: Path, lines: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = 1795000000.0
    with open(path, "w") as f:
        for i in range(lines):
            t = base + i * 0.01
            stamp = _iso(t)
            src = f"10.0.{rng.randrange(8)}.{rng.randrange(1, 255)}"
            dst = (
                f"93.184.{rng.randrange(80)}.{rng.randrange(1, 255)}"
                if rng.random() < 0.7
                else f"10.1.0.{rng.randrange(1, 60)}"
            )
            kind = rng.random()
            common = {"timestamp": stamp, "flow_id": 10**12 + i, "in_iface": "eth0", "src_ip": src,
                      "src_port": rng.randrange(32768, 61000), "dest_ip": dst, "host": "suri-1"}  # fmt: skip
            if kind < 0.5:
                proto = "TCP" if rng.random() < 0.65 else "UDP"
                tc = rng.choice(["1b", "1a", "14", "00", "12"]) if proto == "TCP" else None
                event = {**common, "event_type": "flow", "dest_port": rng.choice([443, 80, 53, 22, 8443, 3389]),
                         "proto": proto, "app_proto": rng.choice(["tls", "http", "dns", "failed"]),
                         "flow": {"pkts_toserver": rng.randrange(1, 50), "pkts_toclient": rng.randrange(0, 50),
                                  "bytes_toserver": rng.randrange(60, 9000), "bytes_toclient": rng.randrange(0, 90000),
                                  "start": _iso(t - 5), "end": stamp, "age": 5, "state": "closed",
                                  "reason": "timeout", "alerted": False}}  # fmt: skip
                if tc is not None:
                    event["tcp"] = {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": tc, "state": "closed"}
            elif kind < 0.7:
                event = {**common, "event_type": "dns", "dest_port": 53, "proto": "UDP",
                         "dns": {"type": "query", "id": i % 65536, "rrname": f"host{i % 5000}.example.com",
                                 "rrtype": "A", "tx_id": 0}}  # fmt: skip
            elif kind < 0.85:
                event = {**common, "event_type": "tls", "dest_port": 443, "proto": "TCP",
                         "tls": {"subject": "CN=example.com", "issuerdn": "CN=Example CA", "sni": "example.com",
                                 "version": "TLS 1.3", "ja3": {"hash": "e7d705a3286e19ea42f587b3"}}}  # fmt: skip
            elif kind < 0.98:
                event = {**common, "event_type": "alert", "dest_port": 80, "proto": "TCP",
                         "alert": {"action": "allowed", "gid": 1, "signature_id": 2100498, "rev": 7,
                                   "signature": "GPL ATTACK_RESPONSE id check returned root",
                                   "category": "Potentially Bad Traffic", "severity": 2}}  # fmt: skip
            else:
                event = {
                    "timestamp": stamp,
                    "event_type": "stats",
                    "stats": {
                        "uptime": i,
                        "capture": {"kernel_packets": i * 10, "kernel_drops": 0},
                        "decoder": {"pkts": i * 10, "bytes": i * 9000},
                    },
                }
            f.write(json.dumps(event, separators=(",", ":")) + "\n")
    return path


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
