"""Inventories over a synack store, as pandas DataFrames.

    from synack.inventory import Inventory
    inv = Inventory("synack-store", nets="all")           # a store and its filters (see store_inventory)
    inv.servers()                                         # server ports
    inv.new_servers("2026-11-21")                         # first seen since then
    inv.clients("7d")                                     # client ports, last 7 days

The module functions (inventory.servers(store, ...), ...) take the store
and the filters on every call; an Inventory holds them and what its
queries share.

Every function reads the partial aggregates that ingest keeps (never the
records, never writing) and documents its columns and sort order.
"""

from synack.inventory.client_ports import client_pairs, client_sightings, clients, new_clients
from synack.inventory.dailies import upgrade_needed
from synack.inventory.networks import DEFAULT_NETS
from synack.inventory.server_ports import closed, gone_servers, hosts_serving, new_servers, server_sightings, servers
from synack.inventory.store_inventory import Inventory
from synack.inventory.store_reader import InventoryError

__all__ = [
    "DEFAULT_NETS", "Inventory", "InventoryError", "client_pairs", "client_sightings", "clients", "closed",
    "gone_servers", "hosts_serving", "new_clients", "new_servers", "server_sightings", "servers", "upgrade_needed",
]  # fmt: skip
