"""The Dask engine against the local engine, wall time, same files, same run.

    pip install '.[dask]'
    python bench/bench_dask.py                      # 40 files of 250,000 records
    python bench/bench_dask.py --files 8 --rows 100000

Generates (once, cached in bench/data/) `--files` hourly conn.logs of
`--rows` records each, then runs `synack ingest DIR` in a fresh process
and a fresh store with the local engine and with `--engine dask --workers
2` (a local cluster of 2 worker processes, started and stopped inside the
run: its start-up is counted), best of --repeat, and prints the ratio (the
issue's target: dask <= 1.3x local on this 2-core machine) and the records
per second per worker core.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.conn_gen import write_conn_log  # noqa: E402

TARGET = 1.3


def logs(folder: Path, files: int, rows: int) -> Path:
    """`files` conn logs of `rows` records, one hour each (cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        path = folder / f"conn.{i:03d}.log"
        if not path.exists():
            write_conn_log(path, rows, seed=1 + i * 7919, start=1795000000.0 + 3600 * i, span=3600.0)
    return folder


def timed_ingest(folder: Path, engine: list[str]) -> tuple[float, str]:
    """Wall seconds of one `synack ingest` into a fresh store, and its summary line."""
    with tempfile.TemporaryDirectory(prefix="synack-bench-", dir=HERE / "data") as tmp:
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "synack", "ingest", str(folder), "--store", f"{tmp}/store", "-q",
                              *engine], cwd=HERE.parent, capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"ingest failed: {run.stdout}{run.stderr[-2000:]}")
    return seconds, run.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    folder = logs(HERE / "data" / f"dask-{args.files}x{args.rows}", args.files, args.rows)
    total = args.files * args.rows
    engines = {"local": [], "dask": ["--engine", "dask", "--workers", str(args.workers)]}
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, options in engines.items():  # interleaved, so load changes hit both
            seconds, summary = timed_ingest(folder, options)
            best[name] = min(best.get(name, seconds), seconds)
            print(f"{name:<6} {seconds:7.1f} s   {summary}")
    ratio = best["dask"] / best["local"]
    print(f"\n{total:,} records in {args.files} files: local {best['local']:.1f} s, dask ({args.workers} workers) "
          f"{best['dask']:.1f} s")  # fmt: skip
    print(f"dask / local wall time = {ratio:.2f}x (target <= {TARGET}x)")
    print(f"dask: {total / best['dask'] / args.workers:,.0f} records/s per worker core "
          f"(local engine: {total / best['local']:,.0f} records/s per process)")  # fmt: skip
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
