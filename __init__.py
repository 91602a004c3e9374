"""synack: server ports, client ports and new server ports from Zeek (and
Suricata) logs, in a Parquet store.

    from synack import Inventory
    inv = Inventory("synack-store", nets="all")
    inv.servers(); inv.new_servers("7d"); inv.clients("2026-11-01")

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
    from synack.ingest.errors import SynackError
    from synack.inventory import Inventory, InventoryError

__all__ = ["Inventory", "InventoryError", "SynackError"]

_HOME = {"Inventory": "synack.inventory", "InventoryError": "synack.inventory", "SynackError": "synack.ingest.errors"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'synack' has no attribute {name!r}")
