"""Inventories over a synack store, as pandas DataFrames.

    from synack.inventory import Inventory
    inv = Inventory("synack-store", nets="all")           # a store and its filters (see store_inventory)
    inv.servers()                                         # server ports
    inv.servers("7d", port=3389)                          # who serves 3389, the last 7 days
    inv.new_servers("2026-11-21")                         # first seen since then
    inv.clients("7d", host="10.1.0.11")                   # what one host connects to
    inv.host("10.1.0.11")                                 # everything about one host

`Inventory` is the way in: it holds the store, the networks, sensors,
allowlist and `as_of` (one meaning of "now" for every query) once. The
functions below are shorthands for one query of a fresh Inventory
(`servers(store, since, until, nets=..., sensors=...)` is
`Inventory(store, nets=..., sensors=...).servers(since, until)`), so the
two never disagree.

Every query reads the partial aggregates that ingest keeps (never the
records, never writing) and documents its columns and sort order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from synack.inventory.dailies import upgrade_needed
from synack.inventory.networks import DEFAULT_NETS
from synack.inventory.store_inventory import NEWEST, Inventory
from synack.inventory.store_reader import InventoryError, StoreLike

__all__ = [
    "DEFAULT_NETS", "NEWEST", "Inventory", "InventoryError", "client_pairs", "clients", "closed", "gone_servers",
    "new_clients", "new_servers", "servers", "upgrade_needed",
]  # fmt: skip

#: The keyword arguments of a shorthand that are the Inventory's settings (the rest go to the query).
_SETTINGS = ("nets", "sensors", "allow", "as_of", "strict")


def _shorthand(method: str) -> Callable[..., pd.DataFrame]:
    """The package function `method(store, *args, **kwargs)`: one query of a
    fresh Inventory, `Inventory(store, **settings).method(*args, **query)`."""

    def query(store: StoreLike, *args: Any, **kwargs: Any) -> pd.DataFrame:
        settings = {k: kwargs.pop(k) for k in _SETTINGS if k in kwargs}
        answer: pd.DataFrame = getattr(Inventory(store, **settings), method)(*args, **kwargs)
        return answer

    query.__name__ = query.__qualname__ = method
    query.__doc__ = f"Inventory(store, **settings).{method}(*args, **query): see Inventory.{method}."
    return query


servers = _shorthand("servers")
clients = _shorthand("clients")
client_pairs = _shorthand("client_pairs")
closed = _shorthand("closed")
new_servers = _shorthand("new_servers")
new_clients = _shorthand("new_clients")
#: `until` defaults to the Inventory's as_of (the wall clock; as_of="newest" for archived logs).
gone_servers = _shorthand("gone_servers")
