"""Inventories over a synack store, as pandas DataFrames.

    import inventory
    inventory.servers("synack-store")                     # server ports
    inventory.new_servers("synack-store", "2026-11-21")   # first seen since then
    inventory.clients("synack-store", "7d")               # client ports, last 7 days

Every function reads the partial aggregates that ingest keeps (never the
records, never writing) and documents its columns and sort order.
"""

from inventory.client_ports import client_pairs, client_sightings, clients, new_clients
from inventory.dailies import upgrade_needed
from inventory.networks import DEFAULT_NETS
from inventory.server_ports import closed, gone_servers, hosts_serving, new_servers, server_sightings, servers
from inventory.store_reader import InventoryError

__all__ = [
    "DEFAULT_NETS", "InventoryError", "client_pairs", "client_sightings", "clients", "closed", "gone_servers",
    "hosts_serving", "new_clients", "new_servers", "server_sightings", "servers", "upgrade_needed",
]  # fmt: skip
