"""One day whose answer is huge: every query and the report as whole processes.

    python bench/bench_wide_day.py [--rows 2031585] [--keep DIR]

Two days a sensor meets sooner or later, each a conn.log of about 2 M
records (cached in bench/data/wide/) ingested into a store of its own:

* **tarpit**: 31 hosts answer a SYN on every TCP port (a SYN proxy or a
  tarpit), so the day has 2 M new server ports;
* **fan-in**: 2 M distinct clients reach one server port.

Each question runs as a whole `synack` process (start-up included) and
prints its seconds and peak resident memory (wait4's maxrss) against the
floor of the read side: under 500 MB whatever the answer's size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_read_side import SYNACK, measured  # noqa: E402

DAY = 1795046400.0  # 2026-11-19 00:00 UTC
FLOOR_MB = 500


def write_day(path: Path, rows: int, shape: str) -> None:
    """A conn.log of `rows` complete TCP handshakes over one day, shaped as `shape` (in a child process)."""
    code = f"""
import sys; sys.path.insert(0, {str(HERE.parent)!r})
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.csv as pacsv
from bench.conn_gen import conn_table, header, _ipv4, _fixed
rows, shape = {rows}, {shape!r}
table = conn_table(rows, seed=77, start={DAY!r}, span=86000.0)
ids = np.arange(rows)
if shape == "tarpit":
    servers, ports, clients = _ipv4(0x0A06_0000, ids // 65535), ids % 65535 + 1, _ipv4(0x5DB8_0000, ids % 5000)
else:
    servers, ports, clients = _ipv4(0x0A06_0000, ids * 0), ids * 0 + 443, _ipv4(0x6400_0000, ids)
text = lambda v: pa.array(np.full(rows, v, dtype=object))
replace = {{"id.resp_h": servers, "id.resp_p": pc.cast(pa.array(ports), pa.string()), "id.orig_h": clients,
           "proto": text("tcp"), "service": text("-"), "conn_state": text("SF"), "history": text("ShADadFf"),
           "handshake": text("open"), "ip_proto": text("6"), "local_resp": text("T")}}
for name, column in replace.items():
    table = table.set_column(table.column_names.index(name), name, column)
with open({str(path)!r}, "wb") as f:
    f.write(header("2026-11-19-00-00-00"))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, delimiter="\\t", quoting_style="none"))
    f.write(sink.getvalue().to_pybytes())
    f.write(b"#close\\t2026-11-20-00-00-00\\n")
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code], check=True)


def questions(store: Path, out: Path) -> dict[str, list[str]]:
    """Each question's command line, its answer written to a file under `out`."""
    s = ["--store", str(store), "--nets", "all"]
    csv = lambda name: ["-f", "csv", "-o", str(out / f"{name}.csv")]  # noqa: E731
    return {
        "servers -f csv": ["servers", *s, *csv("servers")],
        "servers -f jsonl": ["servers", *s, "-f", "jsonl", "-o", str(out / "servers.jsonl")],
        "servers (a table)": ["servers", *s, "-o", str(out / "servers.txt")],
        "new-ports -f csv": ["new-ports", "--since", "2026-11-19", *s, *csv("new")],
        "new-ports --clients -f csv": ["new-ports", "--clients", "--since", "2026-11-19", *s, *csv("new-clients")],
        "clients -f csv": ["clients", *s, *csv("clients")],
        "clients --detail -f csv": ["clients", "--detail", *s, *csv("detail")],
        "report": ["report", "--date", "2026-11-19", *s, "-o", str(out)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=31 * 65535)
    parser.add_argument("--keep", type=Path, help="keep the stores here (reused by the next run)")
    parser.add_argument("--shape", choices=["tarpit", "fan-in"], action="append")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="synack-wide-"))
    ok = True
    for shape in args.shape or ["tarpit", "fan-in"]:
        log = HERE / "data" / "wide" / f"{shape}-{args.rows}.log"
        if not log.exists():
            write_day(log, args.rows, shape)
        store = work / shape / "store"
        if not store.exists():
            seconds, peak = measured([*SYNACK, "ingest", "--store", str(store), "-q", str(log)])
            print(f"{shape}: ingested {args.rows:,} records in {seconds:.1f} s, {peak:.0f} MB")
        out = work / shape / "answers"
        out.mkdir(parents=True, exist_ok=True)
        for name, command in questions(store, out).items():
            seconds, peak = measured([*SYNACK, *command])
            met = peak < FLOOR_MB
            ok &= met
            print(f"{shape:7} {name:26} {seconds:7.2f} s {peak:7.0f} MB  {'ok' if met else 'OVER'} (< {FLOOR_MB} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
