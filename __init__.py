"""synack: server ports, client ports and new server ports from Zeek (and
Suricata) logs, in a Parquet store.

    import synack
    synack.ingest_logs(["/opt/zeek/logs"], "synack-store")  # logs -> store, exactly once
    inv = synack.Inventory("synack-store", nets="all")   # store -> DataFrames
    inv.servers(); inv.new_servers("7d"); inv.clients("2026-11-01"); inv.host("10.1.0.11")

The installed package holds the repository's folders as subpackages:
`synack.ingest` (logs -> store), `synack.inventory` (store -> DataFrames),
`synack.cli` (the `synack` command) and `synack.samples`. The names below
are imported on first use, so `import synack` (and the command's start)
stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synack.ingest.engines import ingest_paths as ingest_logs
    from synack.ingest.errors import SynackError
    from synack.inventory import Inventory, InventoryError
    from synack.samples.generate import OUT as SAMPLES

__all__ = ["SAMPLES", "Inventory", "InventoryError", "SynackError", "ingest_logs"]

#: Public name -> (module, name there). `ingest_logs(paths, store, sensor=...)`
#: ingests logs into a store (synack.ingest.engines.ingest_paths);
#: `SAMPLES` is the bundled sample Zeek log directory.
_HOME = {
    "Inventory": ("synack.inventory", "Inventory"),
    "InventoryError": ("synack.inventory", "InventoryError"),
    "SynackError": ("synack.ingest.errors", "SynackError"),
    "ingest_logs": ("synack.ingest.engines", "ingest_paths"),
    "SAMPLES": ("synack.samples.generate", "OUT"),
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        module, attribute = _HOME[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'synack' has no attribute {name!r}")
