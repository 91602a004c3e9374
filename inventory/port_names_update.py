"""Regenerate inventory/data/port_names.tsv from the IANA registry.

    python -m synack.inventory.port_names_update [SERVICES_FILE]

The IANA service-names-port-numbers registry is public domain. Debian's
libwireshark-data ships it in services(5) form as
/usr/share/wireshark/services (`apt-get download libwireshark-data`,
`dpkg-deb -x`); that is the default input. The output keeps, per
(port, proto) for tcp and udp, the registry's first name: a compact table
of a few thousand lines, with the source and date in its header.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

DEFAULT_SOURCE = Path("/usr/share/wireshark/services")
OUT = Path(__file__).resolve().parent / "data" / "port_names.tsv"
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][\w.+\-]*)\s+(?P<port>\d+)/(?P<protos>[a-z/]+)")


def parse_services(text: str) -> dict[tuple[int, str], str]:
    """(port, proto) -> first registered name, for tcp and udp."""
    names: dict[tuple[int, str], str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        for proto in m.group("protos").split("/"):
            if proto in ("tcp", "udp"):
                names.setdefault((int(m.group("port")), proto), m.group("name"))
    return names


def write_table(names: dict[tuple[int, str], str], source: str, out: Path = OUT) -> None:
    lines = [
        f"# IANA service names by port and protocol, derived from {source}",
        f"# generated {dt.date.today().isoformat()} by inventory/port_names_update.py; public domain data",
        "port\tproto\tname",
    ]
    lines += [f"{port}\t{proto}\t{name}" for (port, proto), name in sorted(names.items())]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    table = parse_services(src.read_text(encoding="utf-8", errors="replace"))
    write_table(table, f"{src.name} (Debian libwireshark-data)")
    print(f"{len(table)} entries -> {OUT}")
