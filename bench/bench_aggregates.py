"""Incremental aggregates: memory, ingest speed, append cost and long-range queries.

    python bench/bench_aggregates.py                 # 2M, 8M, 32M records in one day
    python bench/bench_aggregates.py --rows 2000000  # a quick run

Every figure is a whole `synack` process (start-up included) measured with
/usr/bin/time in this run, against baselines measured in the same run:

* peak RSS of `synack ingest` of a one-day log of each size (floor: < 500 MB, flat);
* `synack ingest` rows/s against pyarrow's streaming CSV reader -> ParquetWriter
  (zstd) on the same file (floor 1.0x, goal 1.5x): the fastest of --repeat
  alternated runs of each (the peak memory: the highest of synack's runs);
* appending a 2,000-row log to the largest day vs to an empty store (floor: <= 2x);
* `synack servers --since <mid-day>` on the largest day: peak RSS (< 500 MB);
* `synack servers` and `synack new-ports` over 365 days of aggregates shaped
  like a 350k-records-a-day network (the day's partials copied to 365 days
  with shifted times) and their monthly roll-ups, default networks: wall
  time (< 1 s), beside the time Python takes to import pandas and pyarrow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.conn_gen import write_conn_log  # noqa: E402
from synack.ingest.aggregates import merge_clients, merge_servers  # noqa: E402
from synack.ingest.partials import COARSE, COARSE_FLAG, write_aggregate  # noqa: E402
from synack.ingest.store import Store  # noqa: E402
from synack.ingest.store_files import locate  # noqa: E402

DAY = 1795046400.0  # 2026-11-19 00:00 UTC
MEMORY_MB = 500

BARE = """
import sys, pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
from bench.conn_gen import FIELDS
names = [n for n, _ in FIELDS]
skip = 8  # the header block's lines
read = pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=16 << 20)
reader = pacsv.open_csv(sys.argv[1], read_options=read,
    parse_options=pacsv.ParseOptions(delimiter='\\t', quote_char=False, invalid_row_handler=lambda row: 'skip'),
    convert_options=pacsv.ConvertOptions(null_values=['-'], strings_can_be_null=True))
writer = None
for batch in reader:
    writer = writer or pq.ParquetWriter(sys.argv[2], batch.schema, compression='zstd')
    writer.write_batch(batch)
writer.close()
"""


def timed(args: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS MB) of the whole process."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr[-800:]}")
    seconds, kb = proc.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kb) / 1024


def synack(*args: str) -> list[str]:
    return [sys.executable, "-m", "synack", *args]


def year_of_aggregates(data: Path, work: Path) -> Path:
    """A store whose ledger lists 365 days of partials copied from one
    generated 350k-record day (times shifted a day at a time)."""
    log = data / "net-350000.log"
    if not log.exists():
        write_conn_log(log, 350_000, start=DAY, span=86000.0)
    one = work / "one-day"
    subprocess.run(synack("ingest", str(log), "--store", str(one), "-q"), cwd=ROOT, check=True, capture_output=True)
    db = sqlite3.connect(one / "ledger.sqlite")
    parts = db.execute("SELECT name, day, t_min, t_max, records, coarse FROM partials WHERE coarse != 0").fetchall()
    db.close()
    store = work / "year"
    files = locate(store)
    shutil.copytree(one, store, ignore=shutil.ignore_patterns("aggregates", "conn"))
    # The day's coarse partials merged into one, as a settled day holds.
    day = parts[0][1]
    folder = one / "aggregates"

    def merged(kind: str, merge: Callable[[list[pa.Table]], pa.Table]) -> pa.Table:
        flag = COARSE_FLAG[kind]
        return merge([pq.read_table(folder / kind / f"date={day}" / f"{p[0]}.parquet") for p in parts if p[5] & flag])

    tables = {"servers": merged("servers", merge_servers), "clients": merged("clients", merge_clients)}
    name = "m9-year"
    t_min, t_max, records = min(p[2] for p in parts), max(p[3] for p in parts), sum(p[4] for p in parts)
    db = sqlite3.connect(store / "ledger.sqlite")
    db.execute("DELETE FROM partials")
    db.execute("DELETE FROM files")
    for i in range(365):
        shift = pa.scalar(i * 86_400_000_000, pa.int64())
        new_day = f"{dt.datetime.fromtimestamp(DAY + i * 86400, dt.UTC):%Y-%m-%d}"
        stamps = {}
        for kind, table in tables.items():
            for column in ("first_seen", "last_seen", "reply_ts"):
                if column in table.column_names:
                    moved = pc.add(table.column(column).cast(pa.int64()), shift).cast(table.schema.field(column).type)
                    table = table.set_column(table.schema.get_field_index(column), column, moved)
            path = store / "aggregates" / kind / f"date={new_day}" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            stamps[kind] = write_aggregate(files, table, kind, path)
        db.execute(
            "INSERT INTO partials (name, day, source_id, chunk_lo, chunk_hi, t_min, t_max, server_rows, client_rows, "
            "records, level, fine, coarse, pending, server_size, server_crc, client_size, client_crc) "
            "VALUES (?,?,'',0,0,?,?,?,?,?,9,0,?,0,?,?,?,?)",
            (name, new_day, t_min + i * 86_400_000_000, t_max + i * 86_400_000_000, len(tables["servers"]),
             len(tables["clients"]), records, COARSE, stamps["servers"].size, stamps["servers"].crc,
             stamps["clients"].size, stamps["clients"].crc),
        )  # fmt: skip
        db.execute("INSERT INTO files (path, source_id, chunk, day, rows, pending) VALUES (?,?,?,?,?,0)",
                   (f"conn/date={new_day}/x.parquet", "s", 0, new_day, 1))  # fmt: skip
        db.execute("INSERT OR REPLACE INTO days (day, generation, rows) VALUES (?,1,?)", (new_day, records))
    db.commit()
    db.close()
    # The monthly roll-ups, as ingest and watch make them day after day.
    with Store.open(store) as opened:
        opened.roll_up_months()
    return store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000, 32_000_000])
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--repeat", type=int, default=3,
                        help="ingest and bare runs per size, alternated; the fastest of each counts (this "
                             "machine's speed drifts by 10-30%% between runs)")  # fmt: skip
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    modules = ["__init__.py", "__main__.py", "cli.py", "ingest", "inventory"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *modules], cwd=ROOT, check=True)
    ok = True
    work = Path(tempfile.mkdtemp(prefix="bench-aggregates-"))
    try:
        print(f"{'records':>11}  {'synack s':>8} {'peak MB':>7}  {'bare s':>6} {'peak MB':>7}  ratio (rows/s)")
        peaks = []
        largest = None
        for rows in args.rows:
            log = args.data / f"day-{rows}.log"
            if not log.exists():
                write_conn_log(log, rows, start=DAY, span=86000.0)
            store = work / f"store-{rows}"
            runs, bares = [], []
            for _ in range(args.repeat):  # alternated, so both see the same drift of the machine's speed
                shutil.rmtree(store, ignore_errors=True)
                runs.append(timed(synack("ingest", str(log), "--store", str(store), "-q")))
                bares.append(timed([sys.executable, "-c", BARE, str(log), str(work / "bare.parquet")]))
            (seconds, _), (bare_s, bare_peak) = min(runs), min(bares)
            peak = max(p for _, p in runs)
            peaks.append(peak)
            ok &= peak < MEMORY_MB
            ratio = bare_s / seconds
            print(f"{rows:>11,}  {seconds:>8.2f} {peak:>7.0f}  {bare_s:>6.2f} {bare_peak:>7.0f}  {ratio:.2f}x "
                  f"(floor 1.0x, goal 1.5x; all runs: synack {', '.join(f'{t:.1f}' for t, _ in runs)} s, "
                  f"bare {', '.join(f'{t:.1f}' for t, _ in bares)} s)")  # fmt: skip
            ok &= ratio >= 1.0
            if rows == args.rows[0]:
                # bench/measure.py's ingest with the aggregate computation replaced by empty tables
                alone, _ = timed([sys.executable, str(HERE / "measure.py"), "synack-no-aggregates", str(log),
                                  str(work / "alone")])  # fmt: skip
                shutil.rmtree(work / "alone")
                print(f"{'':>11}  without the aggregates {alone:.2f} s: {bare_s / alone:.2f}x the bare pipeline; "
                      f"the aggregates are {1 - alone / seconds:.0%} of the ingest")  # fmt: skip
            if largest is not None:
                shutil.rmtree(largest, ignore_errors=True)
            largest = store
        print(f"ingest peaks {', '.join(f'{p:.0f}' for p in peaks)} MB (floor < {MEMORY_MB} MB each)")
        assert largest is not None
        small = args.data / "append-2000.log"
        write_conn_log(small, 2000, seed=99, start=DAY + 86100.0, span=200.0)
        empty_s, _ = timed(synack("ingest", str(small), "--store", str(work / "empty"), "-q"))
        append_s, append_peak = timed(synack("ingest", str(small), "--store", str(largest), "-q"))
        late = f"{dt.datetime.fromtimestamp(DAY + 86160, dt.UTC):%Y-%m-%dT%H:%M:%S}"  # the appended rows' minutes
        query_s, _ = timed(synack("servers", "--store", str(largest), "--since", late, "-f", "csv"))
        ratio = append_s / empty_s
        ok &= ratio <= 2.0
        print(
            f"append 2,000 rows: to the {args.rows[-1]:,}-record day {append_s:.2f} s ({append_peak:.0f} MB), "
            f"to an empty store {empty_s:.2f} s: {ratio:.2f}x (floor <= 2x); queryable after: {query_s:.2f} s"
        )
        noon = f"{dt.datetime.fromtimestamp(DAY + 43200, dt.UTC):%Y-%m-%dT%H:%M:%S}"
        mid_s, mid_peak = timed(synack("servers", "--store", str(largest), "--since", noon,
                                       "-f", "csv"))  # fmt: skip
        whole_s, whole_peak = timed(synack("servers", "--store", str(largest), "-f", "csv"))
        ok &= mid_peak < MEMORY_MB
        print(
            f"servers --since mid-day on the {args.rows[-1]:,}-record day: {mid_s:.2f} s, {mid_peak:.0f} MB "
            f"(floor < {MEMORY_MB} MB); whole day {whole_s:.2f} s, {whole_peak:.0f} MB"
        )
        year = year_of_aggregates(args.data, work)
        imports = min(timed([sys.executable, "-c", "import pandas, pyarrow.dataset"])[0] for _ in range(3))
        print(f"python importing pandas and pyarrow.dataset, nothing else: {imports:.2f} s (best of 3)")
        for name, command in (("servers", ["servers"]), ("new-ports", ["new-ports", "--since", "2027-11-01"])):
            best = min(timed(synack(*command, "--store", str(year), "-f", "csv"))[0] for _ in range(3))
            ok &= best < 1.0
            print(f"synack {name} over 365 days of aggregates: {best:.2f} s (best of 3; floor < 1 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
