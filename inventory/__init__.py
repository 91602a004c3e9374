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

from typing import Any

import pandas as pd

from synack.inventory.dailies import upgrade_needed
from synack.inventory.networks import DEFAULT_NETS
from synack.inventory.store_inventory import NEWEST, Inventory
from synack.inventory.store_reader import DateLike, InventoryError, StoreLike

__all__ = [
    "DEFAULT_NETS", "NEWEST", "Inventory", "InventoryError", "client_pairs", "clients", "closed", "gone_servers",
    "new_clients", "new_servers", "servers", "upgrade_needed",
]  # fmt: skip

_SETTINGS = ("nets", "sensors", "allow", "as_of", "strict")


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Inventory's settings, the query's own arguments) of shorthand keyword arguments."""
    settings = {k: kwargs.pop(k) for k in _SETTINGS if k in kwargs}
    return settings, kwargs


def servers(store: StoreLike, since: DateLike = None, until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).servers(since, until, **filters)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).servers(since, until, **query)


def clients(store: StoreLike, since: DateLike = None, until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).clients(since, until, **filters)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).clients(since, until, **query)


def client_pairs(store: StoreLike, since: DateLike = None, until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).client_pairs(since, until, **filters)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).client_pairs(since, until, **query)


def closed(store: StoreLike, since: DateLike = None, until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).closed(since, until, **filters)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).closed(since, until, **query)


def new_servers(store: StoreLike, since: DateLike = "1d", until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).new_servers(since, until, **query)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).new_servers(since, until, **query)


def new_clients(store: StoreLike, since: DateLike = "1d", until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).new_clients(since, until, **query)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).new_clients(since, until, **query)


def gone_servers(store: StoreLike, until: DateLike = None, **kwargs: Any) -> pd.DataFrame:
    """Inventory(store, **settings).gone_servers(until, **query): `until`
    defaults to the Inventory's as_of (the wall clock; as_of="newest" for
    archived logs)."""
    settings, query = _split(kwargs)
    return Inventory(store, **settings).gone_servers(until, **query)
