"""Inventories over a synack store, as pandas DataFrames (see server_ports)."""

from inventory.server_ports import new_servers, servers

__all__ = ["new_servers", "servers"]
