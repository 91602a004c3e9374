"""Ingest speed and memory against baselines measured in the same run.

    pip install '.[bench]'          # zat, for the zat baseline
    python bench/bench_ingest.py    # 2M and 8M rows; --rows to choose

For each size it generates (once, cached in bench/data/) a realistic
conn.log, then runs each contender in its own process, prints rows/s and
peak resident memory, and the ratios the ingest issue asks for:
synack / bare pipeline (pyarrow.csv -> Parquet zstd) >= 1.0, synack / zat
LogToDataFrame >= 2.0, peak memory < 500 MB and flat with file size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.child import run_measured  # noqa: E402
from bench.conn_gen import SHAPES, write_conn_log  # noqa: E402

TARGETS = {"bare": 1.0, "zat": 2.0}
MEMORY_LIMIT_MB = 500


def measure(mode: str, log: Path) -> dict[str, float]:
    """Run one contender in a child process; return rows, seconds, rows/s, peak MB."""
    result = run_measured([str(HERE / "measure.py"), mode, str(log)], mode)
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000])
    parser.add_argument("--zat-rows", type=int, default=2_000_000, help="largest size zat is run on (it is slow)")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    shapes = "the log's mix (conn_gen.SHAPES): wide has 10x the hosts and pairs, about 11%% scans"
    parser.add_argument("--shape", choices=sorted(SHAPES), default="enterprise", help=shapes)
    args = parser.parse_args()

    ok = True
    peaks: dict[int, float] = {}
    print(f"{'rows':>10}  {'contender':<20} {'rows/s':>12} {'seconds':>8} {'peak MB':>8}  ratio")
    for rows in args.rows:
        log = args.data / (f"conn-{rows}.log" if args.shape == "enterprise" else f"conn-{args.shape}-{rows}.log")
        if not log.exists():
            write_conn_log(log, rows, shape=args.shape)
        results = {"synack": measure("synack", log), "bare": measure("bare", log)}
        if rows <= args.zat_rows:
            results["zat"] = measure("zat", log)
            results["synack-read"] = measure("synack-read", log)
        results["synack-no-aggregates"] = measure("synack-no-aggregates", log)
        for mode, r in results.items():
            assert r["rows"] == rows, (mode, r["rows"])
            ratio = ""
            if mode in TARGETS:
                value = results["synack"]["rows_per_s"] / r["rows_per_s"]
                ratio = f"synack/{mode} = {value:.2f}x (target >= {TARGETS[mode]:.1f}x)"
                ok &= value >= TARGETS[mode]
            elif mode == "synack-no-aggregates":
                value = r["rows_per_s"] / results["bare"]["rows_per_s"]
                share = 1 - r["seconds"] / results["synack"]["seconds"]
                ratio = f"without aggregates /bare = {value:.2f}x; the aggregates are {share:.0%} of the ingest"
            elif mode == "synack-read" and "zat" in results:
                value = r["rows_per_s"] / results["zat"]["rows_per_s"]
                ratio = f"read-only synack/zat = {value:.2f}x (like for like; not the target)"
            print(
                f"{rows:>10,}  {mode:<20} {r['rows_per_s']:>12,.0f} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f}  {ratio}"
            )
        peaks[rows] = results["synack"]["peak_mb"]
        ok &= peaks[rows] < MEMORY_LIMIT_MB
    print(
        "synack peak memory: "
        + ", ".join(f"{r:,} rows {p:.0f} MB" for r, p in peaks.items())
        + f" (limit {MEMORY_LIMIT_MB} MB)"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
