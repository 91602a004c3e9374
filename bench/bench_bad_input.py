"""Ingest speed under bad input: a log whose every other line has an unparsable `ts`.

    python bench/bench_bad_input.py                 # 1,000,000 lines
    python bench/bench_bad_input.py --rows 200000

Prints rows/s of `synack ingest` (in-process, the work only) on a clean log
and on the same log with every other line's `ts` replaced by garbage, and
their ratio (floor: 0.10, the hostile-input issue). Both runs in this process,
one after the other, each into a fresh store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.conn_gen import write_conn_log  # noqa: E402
from synack.ingest.conn_ingest import ingest_paths  # noqa: E402


def corrupt_every_other_ts(clean: Path, out: Path) -> None:
    """Write `clean` to `out` with the `ts` of every other data line made unparsable."""
    with open(clean, "rb") as src, open(out, "wb") as dst:
        n = 0
        for line in src:
            if not line.startswith(b"#"):
                n += 1
                if n % 2 == 0:
                    line = b"not-a-time" + line[line.index(b"\t") :]
            dst.write(line)


def timed_ingest(log: Path, store: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    summary = ingest_paths([log], store)
    return time.perf_counter() - started, summary.rows, summary.quarantined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clean, bad = Path(tmp) / "clean" / "conn.log", Path(tmp) / "bad" / "conn.log"
        clean.parent.mkdir()
        bad.parent.mkdir()
        write_conn_log(clean, options.rows, seed=7)
        corrupt_every_other_ts(clean, bad)
        clean_s, clean_rows, _ = timed_ingest(clean, Path(tmp) / "store-clean")
        bad_s, bad_rows, quarantined = timed_ingest(bad, Path(tmp) / "store-bad")
    clean_rate, bad_rate = clean_rows / clean_s, (bad_rows + quarantined) / bad_s
    print(f"clean:           {clean_rows:>9} rows in {clean_s:6.2f} s  {clean_rate:>10,.0f} lines/s")
    print(
        f"every other bad: {bad_rows:>9} rows + {quarantined} quarantined in {bad_s:6.2f} s  {bad_rate:>10,.0f} lines/s"
    )
    print(f"ratio bad/clean: {bad_rate / clean_rate:.2f}  (floor 0.10)")


if __name__ == "__main__":
    main()
