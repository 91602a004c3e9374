"""Everything a store knows of one host: `synack host ADDR` and `Inventory.host(addr)`.

A HostView gathers, for one address and a range, the answers of the
ordinary queries narrowed to that host (every network: the host is the
filter): the ports it served, the ports it refused, what it connects to as
a client, its sensors, its new and gone ports, the sensor's notices
about it and what the sensor's identity logs say it is. It renders as JSON (one document) and as one small
self-contained HTML page; the CLI prints its tables one after another.
"""

from __future__ import annotations

import datetime as dt
import html
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from synack.inventory import export
from synack.inventory.identities import host_facts
from synack.inventory.store_reader import DateLike, InventoryError

if TYPE_CHECKING:
    from synack.inventory.store_inventory import Inventory

#: The sections of a host view, in order, with their titles.
SECTIONS = {
    "served": "Ports it served",
    "refused": "Ports it refused (RST to a SYN)",
    "connects_to": "What it connects to (as a client)",
    "new": "Its new server ports in the range",
    "gone": "Its gone server ports",
    "notices": "Sensor notices about it",
    "identity": "What the sensor's logs say it is (software, certificates, DHCP names)",
}
#: New ports are looked for in this period before `until` when no range is given.
DEFAULT_NEW_PERIOD = "7d"


@dataclass
class HostView:
    """One host's answers (see SECTIONS), the range they cover and the sensors that saw it."""

    address: str
    since: dt.datetime | None
    until: dt.datetime | None
    as_of: dt.datetime
    sensors: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The view as one JSON-ready document (times ISO 8601 UTC, replies as escaped text)."""
        stamp = lambda t: t.isoformat(timespec="microseconds") if t is not None else None  # noqa: E731
        return {
            "host": self.address, "since": stamp(self.since), "until": stamp(self.until),
            "as_of": stamp(self.as_of), "sensors": self.sensors,
            **{name: export.records(df) for name, df in self.tables.items()},
        }  # fmt: skip

    def to_html(self) -> str:
        """The view as one self-contained HTML page (every value escaped)."""
        from synack.inventory.report_html import _table

        e = html.escape
        span = f"{self.since:%Y-%m-%d %H:%M} to " if self.since else "from the first record to "
        span += f"{self.until:%Y-%m-%d %H:%M} UTC" if self.until else "the newest record"
        body = "".join(f"<h2>{e(title)}</h2>" + _table(self.tables[name], 500, f"synack host {self.address} -f json")
                       for name, title in SECTIONS.items())  # fmt: skip
        sensors = ", ".join(self.sensors) or "none"
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>synack: host {e(self.address)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>Host {e(self.address)}</h1><p>{e(span)}; sensors: {e(sensors)}</p>{body}</body></html>\n"
        )


_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:1200px}"
    "table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #d8dde3;padding:.2rem .5rem;"
    "text-align:left}.num{text-align:right}.none,.more{color:#5b6470}"
)


def host_view(inv: Inventory, address: str, since: DateLike = None, until: DateLike = None) -> HostView:
    """Everything `inv`'s store knows of `address` in [since, until) (every
    network; the Inventory's sensors, allowlist and as_of). New ports are
    those first seen in the range (default: the DEFAULT_NEW_PERIOD before
    `until`), gone ones those idle 7 days at `until` (default: as_of).
    Raises InventoryError for an address that is not one."""
    try:
        host = ipaddress.ip_address(address.strip()).compressed
    except ValueError:
        raise InventoryError(f"{address!r} is not an IP address") from None
    from synack.inventory.store_inventory import Inventory

    everywhere = Inventory(inv.snapshot(), nets="all", sensors=inv.sensors, allow=inv.allowed, as_of=inv.as_of,
                           strict=inv.strict, answers_all_ports=inv.answers_all_ports)  # fmt: skip
    served = everywhere.servers(since, until, host=host)
    as_client = Inventory(inv.snapshot(), nets=host, sensors=inv.sensors, allow=inv.allowed, as_of=inv.as_of,
                          strict=inv.strict)  # fmt: skip
    pairs = as_client.client_pairs(since, until)
    tables = {
        "served": served,
        "refused": everywhere.closed(since, until, host=host),
        "connects_to": pairs[pairs["client_h"] == host].reset_index(drop=True),
        "new": everywhere.new_servers(since if since is not None else DEFAULT_NEW_PERIOD, until, host=host),
        "gone": everywhere.gone_servers(until, host=host),
        "notices": everywhere.notices(since, until, host=host),
        "identity": host_facts(everywhere.identity_facts(until), host),
    }
    sensors = sorted({s for joined in served.get("sensors", []) for s in str(joined).split(",") if s}
                     | set(tables["notices"].get("sensor", pd.Series(dtype=str)).dropna()))  # fmt: skip
    return HostView(host, everywhere.when(since), everywhere.when(until), everywhere.as_of, sensors, tables)
