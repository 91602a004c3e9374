"""One query of a fresh Inventory as a function, for the tests:
`servers(store, since, nets="all")` is `Inventory(store, nets="all").servers(since)`.

`Inventory` is the package's only way in (issue 29); these keep the tests
that ask one question of a store short. The names the tests also reach
through `inventory.` are re-exported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from synack.inventory import DEFAULT_NETS, NEWEST, Inventory, InventoryError, dailies, upgrade_needed
from synack.inventory.store_reader import StoreLike

__all__ = ["DEFAULT_NETS", "NEWEST", "Inventory", "InventoryError", "dailies", "upgrade_needed"]

#: The keyword arguments that are the Inventory's settings (the rest go to the query).
_SETTINGS = ("nets", "sensors", "allow", "as_of", "strict")


def _shorthand(method: str) -> Callable[..., pd.DataFrame]:
    def query(store: StoreLike, *args: Any, **kwargs: Any) -> pd.DataFrame:
        settings = {k: kwargs.pop(k) for k in _SETTINGS if k in kwargs}
        answer: pd.DataFrame = getattr(Inventory(store, **settings), method)(*args, **kwargs)
        return answer

    query.__name__ = query.__qualname__ = method
    return query


servers = _shorthand("servers")
clients = _shorthand("clients")
client_pairs = _shorthand("client_pairs")
closed = _shorthand("closed")
new_servers = _shorthand("new_servers")
new_clients = _shorthand("new_clients")
gone_servers = _shorthand("gone_servers")
