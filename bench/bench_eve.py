"""Suricata eve.json ingest speed against pandas.read_json(lines=True).

    python bench/bench_eve.py [--lines 1000000]

Both read the same generated file (about half flow events) in their own
process; the comparison is lines of the file per second (pandas parses
every line; synack skips non-flow lines unparsed and ingests the flows into
a store). Target: synack >= 2x, with peak memory < 500 MB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.child import run_measured  # noqa: E402
from bench.eve_gen import write_eve  # noqa: E402

CHILD = """
import json, sys, time
mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "synack":
    from synack.cli import bound_memory
    from synack.ingest.conn_ingest import ingest_paths
    from pathlib import Path
    bound_memory()
    started = time.perf_counter()
    rows = ingest_paths([Path(path)], Path(out)).rows
else:
    import pandas as pd
    started = time.perf_counter()
    rows = len(pd.read_json(path, lines=True))
seconds = time.perf_counter() - started
from bench.child import peak_mb
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb()}))
"""


def measure(mode: str, path: Path) -> dict[str, float]:
    return run_measured(["-c", CHILD, mode, str(path)], f"eve-{mode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    path = HERE / "data" / f"eve-{args.lines}.json"
    if not path.exists():
        write_eve(path, args.lines)
    lines = sum(1 for _ in open(path, "rb"))
    synack, pandas = measure("synack", path), measure("pandas", path)
    s_rate, p_rate = lines / synack["seconds"], lines / pandas["seconds"]
    print(f"file: {lines:,} lines, {path.stat().st_size / 1e6:.0f} MB")
    print(f"synack: {synack['rows']:,.0f} flow rows in {synack['seconds']:.2f} s = {s_rate:,.0f} lines/s, "
          f"peak {synack['peak_mb']:.0f} MB")  # fmt: skip
    print(f"pandas.read_json(lines=True): {pandas['rows']:,.0f} rows in {pandas['seconds']:.2f} s = {p_rate:,.0f} "
          f"lines/s, peak {pandas['peak_mb']:.0f} MB")  # fmt: skip
    ratio = s_rate / p_rate
    ok = ratio >= 2.0 and synack["peak_mb"] < 500
    print(f"synack/pandas = {ratio:.2f}x (target >= 2.0x); {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
