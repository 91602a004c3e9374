"""Where an ingest or a rebuild runs: this machine's threads, or a Dask cluster.

The one place that chooses an engine: ingest.conn_ingest is the local
engine and the shared orchestration (find sources, read what the ledger has
not committed, commit in order, compact); ingest.dask_engine supplies only
how a source is parsed and where the tasks run, and is imported only when
asked for (the local engine imports no Dask). Neither engine imports this
module, so the engines form no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synack.ingest import conn_ingest
from synack.ingest.conn_ingest import IngestSummary, Progress
from synack.ingest.errors import SynackError
from synack.ingest.log_source import DEFAULT_CHUNK_BYTES
from synack.ingest.store import Store
from synack.ingest.store_files import StoreFS, locate
from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_LINE_BYTES

ENGINES = ("local", "dask")


@dataclass(frozen=True)
class Engine:
    """Where the parsing runs: "local" (threads of this process) or "dask"
    (the cluster at `scheduler`, or a local cluster of `workers` processes
    started for the run; see ingest.dask_engine)."""

    kind: str = "local"
    scheduler: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise SynackError(f"unknown engine {self.kind!r}: choose {' or '.join(ENGINES)}")


LOCAL = Engine()


def rebuild_store(store_root: StoreFS | Path, engine: Engine = LOCAL) -> list[str]:
    """Recompute every partial aggregate of the store from its records (on
    `engine`); return the days rebuilt. Raises SynackError for no store."""
    if engine.kind == "dask":
        from synack.ingest.dask_engine import dask_client, rebuild_dask

        with dask_client(engine.scheduler, engine.workers) as client:
            return rebuild_dask(locate(store_root).resolved(), client)
    with Store.open(store_root, create=False) as store:
        return store.rebuild_aggregates()


def ingest_paths(
    paths: list[Path],
    store_root: StoreFS | Path,
    *,
    sensor: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    engine: Engine = LOCAL,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    within_tree: bool = False,
) -> IngestSummary:
    """Ingest the conn logs found in `paths` into the store at `store_root`
    on `engine` (see ingest.conn_ingest.ingest_paths for the contract)."""
    if engine.kind == "dask":
        from synack.ingest.dask_engine import dask_client, ingest_dask

        store_root = locate(store_root).resolved()  # the workers run elsewhere: a relative path means nothing there
        with dask_client(engine.scheduler, engine.workers) as client, Store.open(store_root) as store:
            return ingest_dask(store, paths, client, sensor=sensor, chunk_bytes=chunk_bytes, progress=progress,
                               clock_skew=clock_skew, max_line_bytes=max_line_bytes,
                               within_tree=within_tree)  # fmt: skip
    return conn_ingest.ingest_paths(paths, store_root, sensor=sensor, chunk_bytes=chunk_bytes, progress=progress,
                                    clock_skew=clock_skew, max_line_bytes=max_line_bytes,
                                    within_tree=within_tree)  # fmt: skip
