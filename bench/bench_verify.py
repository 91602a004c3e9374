"""What verifying every file costs a query: the same commands with and without it.

    python bench/bench_verify.py

Every read of a store file checks the whole file's size and CRC32 against
the ledger's stamp and every Parquet page's checksum (ingest.snapshot).
This runs whole `synack` processes (start-up included, /usr/bin/time),
alternated --repeat times, the fastest of each counted, on:

* 365 days of aggregates shaped like a 350k-records-a-day network (as
  bench_aggregates builds them, with their monthly roll-ups): `servers`,
  `servers --nets all`, `clients`;
* the one real 350k-record day behind it: `report --date` of that day
  (every table of the page) and `servers --since` mid-day (partials and
  the records of those straddling the edge);

each against the same process with verification switched off (the
verified read replaced by a plain `pq.read_table` of the file), and prints
the ratio. There is no floor: the figure goes in the closing note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_aggregates import DAY, timed, year_of_aggregates  # noqa: E402

#: The same CLI, with every verified read replaced by a plain read (what synack did before stamps).
UNVERIFIED = """
import sys
import pyarrow.parquet as pq
from synack.ingest import store_files

def plain(self, path, stamp, rows=None, **options):
    return pq.read_table(str(path), filesystem=self.fs, **options)

store_files.StoreFS.read_verified = plain
sys.argv = ["synack", *sys.argv[1:]]
from synack.cli import main
main()
"""


def run(args: list[str], verified: bool) -> list[str]:
    if verified:
        return [sys.executable, "-m", "synack", *args]
    return [sys.executable, "-c", UNVERIFIED, *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="synack-bench-verify-"))
    try:
        year = year_of_aggregates(args.data, work)
        day = work / "one-day"
        date = f"{dt.datetime.fromtimestamp(DAY, dt.UTC):%Y-%m-%d}"
        noon = f"{dt.datetime.fromtimestamp(DAY + 43200, dt.UTC):%Y-%m-%dT%H:%M:%S}"
        cases = [
            ("servers, 365 days", ["servers", "--store", str(year), "-f", "csv"]),
            ("servers --nets all, 365 days", ["servers", "--store", str(year), "--nets", "all", "-f", "csv"]),
            ("clients, 365 days", ["clients", "--store", str(year), "-f", "csv"]),
            (
                "report of the 350k-record day",
                ["report", "--store", str(day), "--date", date, "-o", str(work / "report")],
            ),  # fmt: skip
            ("servers --since mid-day", ["servers", "--store", str(day), "--since", noon, "-f", "csv"]),
        ]
        for name, command in cases:
            best: dict[bool, tuple[float, float]] = {}
            for _ in range(args.repeat):
                for verified in (True, False):
                    seconds, peak = timed(run(command, verified))
                    if verified not in best or seconds < best[verified][0]:
                        best[verified] = (seconds, peak)
            (on, on_mb), (off, off_mb) = best[True], best[False]
            print(f"{name}: verified {on:.2f} s ({on_mb:.0f} MB), unverified {off:.2f} s ({off_mb:.0f} MB): "
                  f"{on / off:.2f}x")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
