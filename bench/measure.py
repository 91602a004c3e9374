"""One measurement, run in its own process so its peak memory is its own.

    python bench/measure.py {synack,synack-no-aggregates,synack-read,bare,zat} LOG [STORE_DIR]

Prints one JSON object: rows, seconds (the work only, not interpreter
start-up or imports).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections import deque  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402

from synack.ingest.log_source import Chunk  # noqa: E402


def synack(log: Path, out: Path) -> Callable[[], int]:
    """synack's ingest exactly as `synack ingest` runs it."""
    from synack.cli import bound_memory
    from synack.ingest.conn_ingest import ingest_paths

    bound_memory()
    return lambda: ingest_paths([log], out).rows


def synack_no_aggregates(log: Path, out: Path) -> Callable[[], int]:
    """synack's ingest with the aggregation replaced by empty tables: what
    the ingest costs besides computing the partial aggregates (to split the
    ingest's time between the pipeline and the aggregates; not a mode to use)."""
    import synack.ingest.partials as partials
    from synack.ingest.aggregates import DAILY_CLIENTS_SCHEMA, DAILY_SERVERS_SCHEMA

    empty = (DAILY_SERVERS_SCHEMA.empty_table(), DAILY_CLIENTS_SCHEMA.empty_table())
    partials.aggregate_day = lambda records: empty  # type: ignore[assignment]
    return synack(log, out)


def synack_read(log: Path, out: Path) -> Callable[[], int]:
    """synack's read path only (read, decode, outcome into Arrow; nothing
    written), on the same threads as an ingest: the like-for-like
    comparison with zat, which only reads."""
    from synack.cli import bound_memory
    from synack.ingest.conn_ingest import PARSE_AHEAD
    from synack.ingest.log_source import identify, parse_block, read_blocks

    bound_memory()

    def run() -> int:
        source = identify(log)
        assert source is not None
        rows = 0
        with ThreadPoolExecutor(PARSE_AHEAD) as pool:
            pending: deque[Future[Chunk]] = deque()
            for raw in read_blocks(source):
                pending.append(pool.submit(parse_block, source, raw, None))
                if len(pending) > PARSE_AHEAD:
                    rows += _rows(pending.popleft().result())
            while pending:
                rows += _rows(pending.popleft().result())
        return rows

    return run


def _rows(chunk: Chunk) -> int:
    return len(chunk.table) if chunk.table is not None else 0


def bare(log: Path, out: Path) -> Callable[[], int]:
    """The bare columnar pipeline: pyarrow's CSV reader straight into zstd Parquet."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    return lambda: _bare(log, out, pacsv, pq)


def _bare(log: Path, out: Path, pacsv: Any, pq: Any) -> int:
    with open(log) as f:
        header = [next(f) for _ in range(8)]
    names = header[6].rstrip("\n").split("\t")[1:]
    table = pacsv.read_csv(
        log,
        read_options=pacsv.ReadOptions(skip_rows=8, column_names=names),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=lambda row: "skip"),
    )
    pq.write_table(table, out / "bare.parquet", compression="zstd")
    return table.num_rows


def zat(log: Path, out: Path) -> Callable[[], int]:
    """zat's LogToDataFrame, the usual Python way to read a Zeek log (read only)."""
    from zat.log_to_dataframe import LogToDataFrame

    return lambda: len(LogToDataFrame().create_dataframe(str(log)))


if __name__ == "__main__":
    mode, log = sys.argv[1], Path(sys.argv[2])
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    modes = {"synack": synack, "synack-no-aggregates": synack_no_aggregates, "synack-read": synack_read,
             "bare": bare, "zat": zat}  # fmt: skip
    run = modes[mode](log, out)  # imports happen here, untimed
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    from bench.child import peak_mb

    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb()}))
