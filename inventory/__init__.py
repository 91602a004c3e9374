"""Inventories over a synack store, as pandas DataFrames.

    from synack.inventory import Inventory
    inv = Inventory("synack-store", nets="all")           # a store and its filters (see store_inventory)
    inv.servers()                                         # server ports
    inv.servers("7d", port=3389)                          # who serves 3389, the last 7 days
    inv.new_servers("2026-11-21")                         # first seen since then
    inv.clients("7d", host="10.1.0.11")                   # what one host connects to
    inv.host("10.1.0.11")                                 # everything about one host

`Inventory` is the one way in: it holds the store, the networks, sensors,
allowlist and `as_of` (one meaning of "now" for every query) once, and
every answer carries them in `df.attrs`.

Every query reads the partial aggregates that ingest keeps (never the
records, never writing) and documents its columns and sort order.
"""

from __future__ import annotations

from synack.inventory.dailies import upgrade_needed
from synack.inventory.networks import DEFAULT_NETS
from synack.inventory.store_inventory import NEWEST, Inventory
from synack.inventory.store_reader import InventoryError

__all__ = ["DEFAULT_NETS", "NEWEST", "Inventory", "InventoryError", "upgrade_needed"]
