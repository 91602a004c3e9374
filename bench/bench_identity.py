"""The ingest cost of the identity logs against the conn log of the same capture.

    python bench/bench_identity.py [--rows 1000000]

Generates one hour of a sensor: a conn.log of `--rows` connections
(bench/conn_gen.py's enterprise mix), and the identity logs Zeek writes for
the same connections: an ssl.log line per TLS connection (SNI, leaf
fingerprint), an ssh.log line per SSH connection (the server's banner), an
x509.log line per certificate (Zeek logs a certificate once per hour or
so), a software.log line per internal HTTP/SSH server. Each is ingested
into its own store in its own process; the comparison is seconds and peak
memory. Target: the identity logs cost no more than the conn log (they
have fewer lines; each line is reduced to facts on the way in).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.child import run_measured  # noqa: E402
from bench.conn_gen import conn_table, header  # noqa: E402
from synack.samples.generate import zeek_header  # noqa: E402

CHILD = """
import json, sys, time
from pathlib import Path
from synack.cli import bound_memory
from synack.ingest.conn_ingest import ingest_paths
from bench.child import peak_mb
bound_memory()
started = time.perf_counter()
summary = ingest_paths([Path(p) for p in sys.argv[1:-1]], Path(sys.argv[-1]))
print(json.dumps({"rows": summary.rows, "facts": summary.identities, "seconds": time.perf_counter() - started,
                  "peak_mb": peak_mb()}))
"""

SSL_FIELDS = [("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
              ("id.resp_p", "port"), ("version", "string"), ("cipher", "string"), ("server_name", "string"),
              ("established", "bool"), ("cert_chain_fps", "vector[string]")]  # fmt: skip
SSH_FIELDS = [("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
              ("id.resp_p", "port"), ("version", "count"), ("auth_success", "bool"), ("client", "string"),
              ("server", "string")]  # fmt: skip
X509_FIELDS = [("ts", "time"), ("fingerprint", "string"), ("certificate.subject", "string"),
               ("certificate.issuer", "string"), ("certificate.not_valid_before", "time"),
               ("certificate.not_valid_after", "time"), ("san.dns", "vector[string]"), ("host_cert", "bool"),
               ("client_cert", "bool")]  # fmt: skip
SOFTWARE_FIELDS = [("ts", "time"), ("host", "addr"), ("host_p", "port"), ("software_type", "enum"), ("name", "string"),
                   ("version.major", "count"), ("version.minor", "count"), ("unparsed_version", "string")]  # fmt: skip
_OPTIONS = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")


def _write(path: Path, log: str, fields: list[tuple[str, str]], table: pa.Table) -> Path:
    with open(path, "wb") as f:
        f.write(zeek_header(log, fields, "2026-11-21-10-00-00").encode())
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table.select([n for n, _ in fields]), sink, _OPTIONS)
        f.write(sink.getvalue().to_pybytes())
        f.write(b"#close\t2026-11-21-11-00-00\n")
    return path


def _fingerprint(hosts: pa.Array) -> pa.Array:
    """A stable 64-hex-digit fingerprint per server address (one certificate each)."""
    unique = pc.unique(hosts).to_pylist()
    digests = {h: hashlib.sha256(h.encode()).hexdigest() for h in unique}
    return pa.array([digests[h] for h in hosts.to_pylist()])


def write_capture(folder: Path, rows: int) -> tuple[Path, list[Path]]:
    """(the conn.log, the identity logs) of one generated hour of `rows` connections."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = conn_table(rows, seed=7)
    conn_log = folder / "conn.log"
    with open(conn_log, "wb") as f:
        f.write(header())
        sink = pa.BufferOutputStream()
        pacsv.write_csv(conn, sink, _OPTIONS)
        f.write(sink.getvalue().to_pybytes())
        f.write(b"#close\t2026-11-21-11-00-00\n")
    ts = pc.add(conn["ts"].cast(pa.float64()), 0.05)
    stamp = pc.utf8_slice_codeunits(ts.cast(pa.string()), 0, 17)
    tls = pc.equal(conn["service"], "ssl")
    t = conn.append_column("stamp", stamp).filter(tls)
    fps = _fingerprint(t["id.resp_h"].combine_chunks())
    names = pc.binary_join_element_wise("www-", pc.replace_substring(t["id.resp_h"], ".", "-"), ".example.com", "")
    n = len(t)
    ssl = pa.table({"ts": t["stamp"], "uid": t["uid"], "id.orig_h": t["id.orig_h"], "id.orig_p": t["id.orig_p"],
                    "id.resp_h": t["id.resp_h"], "id.resp_p": t["id.resp_p"], "version": pa.array(["TLSv13"] * n),
                    "cipher": pa.array(["TLS_AES_128_GCM_SHA256"] * n), "server_name": names,
                    "established": pa.array(["T"] * n), "cert_chain_fps": fps})  # fmt: skip
    certs = pa.table({"fingerprint": fps, "name": names, "ts": t["stamp"]})
    certs = certs.group_by("fingerprint", use_threads=False).aggregate([("name", "first"), ("ts", "first")])
    m = len(certs)
    cn = pc.binary_join_element_wise("CN=", certs["name_first"], "")
    x509 = pa.table({"ts": certs["ts_first"], "fingerprint": certs["fingerprint"], "certificate.subject": cn,
                     "certificate.issuer": pa.array(["CN=Bench CA,O=Bench"] * m),
                     "certificate.not_valid_before": pa.array(["1790000000.000000"] * m),
                     "certificate.not_valid_after": pa.array(["1830000000.000000"] * m),
                     "san.dns": certs["name_first"], "host_cert": pa.array(["T"] * m),
                     "client_cert": pa.array(["F"] * m)})  # fmt: skip
    s = conn.append_column("stamp", stamp).filter(pc.equal(conn["id.resp_p"], "22"))
    banners = np.array(["SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6", "SSH-2.0-OpenSSH_9.6", "SSH-2.0-dropbear_2022.83"])
    pick = np.abs(np.array([hash(h) for h in s["id.resp_h"].to_pylist()])) % len(banners)
    k = len(s)
    ssh = pa.table({"ts": s["stamp"], "uid": s["uid"], "id.orig_h": s["id.orig_h"], "id.orig_p": s["id.orig_p"],
                    "id.resp_h": s["id.resp_h"], "id.resp_p": s["id.resp_p"], "version": pa.array(["2"] * k),
                    "auth_success": pa.array(["-"] * k), "client": pa.array(["SSH-2.0-OpenSSH_9.0"] * k),
                    "server": pa.array(banners[pick].tolist())})  # fmt: skip
    web = conn.append_column("stamp", stamp).filter(
        pc.and_(pc.equal(conn["service"], "http"), pc.equal(conn["local_resp"], "T"))
    )
    servers = pa.table({"host": web["id.resp_h"], "host_p": web["id.resp_p"], "ts": web["stamp"]}).group_by(
        ["host", "host_p"], use_threads=False).aggregate([("ts", "first")])  # fmt: skip
    w = len(servers)
    software = pa.table({"ts": servers["ts_first"], "host": servers["host"], "host_p": servers["host_p"],
                         "software_type": pa.array(["HTTP::SERVER"] * w), "name": pa.array(["nginx"] * w),
                         "version.major": pa.array(["1"] * w), "version.minor": pa.array(["24"] * w),
                         "unparsed_version": pa.array(["nginx/1.24.0"] * w)})  # fmt: skip
    identity = [
        _write(folder / "ssl.log", "ssl", SSL_FIELDS, ssl),
        _write(folder / "ssh.log", "ssh", SSH_FIELDS, ssh),
        _write(folder / "x509.log", "x509", X509_FIELDS, x509),
        _write(folder / "software.log", "software", SOFTWARE_FIELDS, software),
    ]
    return conn_log, identity


def lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if not line.startswith(b"#"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = HERE / "data" / f"identity-{args.rows}"
    conn_log, identity = write_capture(folder, args.rows)
    conn = run_measured(["-c", CHILD, str(conn_log)], "identity-conn")
    ident = run_measured(["-c", CHILD, *map(str, identity)], "identity-logs")
    conn_lines, ident_lines = lines(conn_log), sum(lines(p) for p in identity)
    print(f"conn.log: {conn_lines:,} lines, {conn_log.stat().st_size / 1e6:.0f} MB: {conn['seconds']:.2f} s, "
          f"{conn_lines / conn['seconds']:,.0f} lines/s, peak {conn['peak_mb']:.0f} MB")  # fmt: skip
    sizes = ", ".join(f"{p.stem} {lines(p):,}" for p in identity)
    print(f"identity logs ({sizes} lines; {sum(p.stat().st_size for p in identity) / 1e6:.0f} MB): "
          f"{ident['seconds']:.2f} s, {ident_lines / ident['seconds']:,.0f} lines/s, {ident['facts']:,} facts kept, "
          f"peak {ident['peak_mb']:.0f} MB")  # fmt: skip
    ratio = ident["seconds"] / conn["seconds"]
    per_line = (ident["seconds"] / ident_lines) / (conn["seconds"] / conn_lines)
    ok = ratio <= 1.0 and ident["peak_mb"] < 500
    print(f"identity/conn = {ratio:.2f}x the time ({per_line:.2f}x per line); target <= 1.0x; "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
