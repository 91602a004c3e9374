"""One store and the filters its queries share: the way in for notebooks and the CLI.

    from synack.inventory import Inventory
    inv = Inventory("synack-store", nets="all", sensors="edge-1", allow="allow.txt")
    inv.servers("7d")              # server ports of the last 7 days (before `as_of`)
    inv.new_servers("2026-11-21")  # first seen since then
    inv.status()                   # days, records and sensors the store holds

Like sqlite-utils' Database, an Inventory holds what every query needs
once: the store, the networks, the sensors, the allowlist (read once, so a
bad one fails at construction) and `as_of`, the moment ages like "7d",
default periods and "gone" count back from (default: when the Inventory
was made, so every query of one object means the same "now"; "newest":
the end of the store's newest record, for archived logs). What several queries share (the all-time
sightings behind new_servers and new_clients) is read once and kept.
Queries only read. Each query of an Inventory reads the store's ledger
once (a Snapshot, ingest.snapshot) and answers from that state, whatever a
writer does meanwhile; `pinned()` gives an Inventory whose every query
answers from one snapshot (several answers that must agree: a report,
a notebook's comparison), and an Inventory made over a Snapshot is pinned
to it.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd
import pyarrow as pa

from synack.ingest import heap
from synack.ingest.partials import CLIENTS, SERVERS
from synack.ingest.snapshot import Snapshot, StoreFS
from synack.inventory import address_bands as band_sizes
from synack.inventory import client_ports, identities, known_export, notices, server_ports
from synack.inventory.address_bands import Band, address_bands, within
from synack.inventory.allowlist import Allowed, allowed_mask
from synack.inventory.answer_stream import joined, limited, sorted_frames
from synack.inventory.band_split import BandSplit
from synack.inventory.dailies import read_catalog, widened_days
from synack.inventory.host_view import HostView, host_view
from synack.inventory.networks import narrowed
from synack.inventory.query_rows import (
    Allow,
    Nets,
    Sensors,
    allow_entries,
    resolve_nets,
    sensor_list,
    serving,
    sort_by_address,
)
from synack.inventory.row_filters import Many, RowFilter
from synack.inventory.store_reader import DateLike, InventoryError, StoreLike, as_timestamp, snapshot_of, store_files

__all__ = ["NEWEST", "Inventory"]

#: Hosts whose answers are one band whatever they hold (Inventory.bands).
ONE_BAND_HOSTS = 16
#: `as_of` meaning "the end of the store's newest record" (archived logs), not the wall clock.
NEWEST = "newest"


class Filters(TypedDict, total=False):
    """The keyword filters every query takes (see inventory.row_filters.RowFilter)."""

    host: Many  # addresses or networks (CIDR); matches the answer's host columns
    port: Many  # port numbers or ranges ("1000-2000")
    proto: Many  # tcp, udp
    service: Many  # Zeek's detected service or the port's IANA name
    sort: Many  # columns to sort by, in order
    limit: int | None  # at most this many rows


class Inventory:
    """A synack store and the filters shared by its queries (see the module)."""

    def __init__(self, store: StoreLike, *, nets: Nets = None, sensors: Sensors = None, allow: Allow = None,
                 as_of: DateLike = None, ledger: Path | str | None = None, strict: bool = False,
                 answers_all_ports: int = server_ports.ANSWERS_ALL_PORTS) -> None:  # fmt: skip
        """`store`: a directory, or an object-storage URL with its `ledger`
        (ingest.store_files), or a Snapshot (every query answers from it).
        `strict`: count only servers whose SYN-ACK the sensor saw (by
        default a server whose SYN-ACK was missed but whose data was seen
        counts, marked `synack_seen` False). `answers_all_ports`: how many
        TCP ports, most of them quiet, make a host one that answers every
        port (see server_ports.answering_all).
        Raises InventoryError for a bad network, allowlist, date or store
        location (the store is read by the queries)."""
        self.store: StoreFS | Snapshot = store if isinstance(store, Snapshot) else store_files(store, ledger)
        self.nets = nets
        self.sensors = sensors
        self.strict = strict
        self.answers_all_ports = answers_all_ports
        resolve_nets(nets)  # a bad network fails here, not in the first query
        self.allowed: list[Allowed] = allow_entries(allow)
        self.as_of: dt.datetime = (
            self._newest_record() if as_of == NEWEST else as_timestamp(as_of) or dt.datetime.now(dt.UTC)
        )
        self._sightings: dict[str, pd.DataFrame] = {}
        self._identity: dict[str, Any] = {}
        self._only_bands: list[Band] | None = None  # frames: answer in these bands only
        self._ordered = True  # frames: gather and sort what the bands do not give in order
        self._weighed = False  # bands: the last [None] came from weighing the rows and lists (one merge holds them)
        self._kept_new_ports: tuple[dt.datetime | None, dt.datetime | None, client_ports.NewPorts] | None = None

    def __repr__(self) -> str:
        return (f"Inventory({str(self.store)!r}, nets={self.nets!r}, sensors={self.sensors!r}, "
                f"strict={self.strict}, as_of={self.as_of})")  # fmt: skip

    def pinned(self) -> Inventory:
        """This Inventory (same settings and `as_of`) answering every query from one snapshot, taken now."""
        return Inventory(snapshot_of(self.store), nets=self.nets, sensors=self.sensors, allow=self.allowed,
                         as_of=self.as_of, strict=self.strict, answers_all_ports=self.answers_all_ports)  # fmt: skip

    def snapshot(self) -> Snapshot:
        """The state of the store a query of this Inventory would answer from now."""
        return snapshot_of(self.store)

    def _newest_record(self) -> dt.datetime:
        """The end of the newest record of these sensors (the wall clock for a store without records)."""
        names = sensor_list(self.sensors)
        day_rows = snapshot_of(self.store).day_sensors()
        newest = [n for _, sensor, rows, n in day_rows if rows and (names is None or sensor in names)]
        if not newest:
            return dt.datetime.now(dt.UTC)
        return dt.datetime.fromtimestamp(max(newest) / 1e6, dt.UTC) + dt.timedelta(microseconds=1)

    def when(self, value: DateLike) -> dt.datetime | None:
        """A date, time or age ("7d") as a UTC datetime; ages count back from `as_of`."""
        return as_timestamp(value, now=self.as_of)

    def _filters(self, host: Many = None, band: Band = None) -> dict[str, Any]:
        """The query's networks, sensors and strictness; with `host`, the
        networks narrowed to those hosts (the filter pushed down to the read:
        only the aggregate rows of those addresses are read); with `band`,
        narrowed to the band's networks (inventory.address_bands)."""
        nets: Nets = self.nets
        if host is not None:
            inside = narrowed(resolve_nets(self.nets), list(RowFilter.of(host=host).hosts))
            nets = "all" if inside is None else [str(n) for n in inside]
        if band is not None:
            nets = [str(n) for n in within(resolve_nets(nets), band) or []]
        return {"nets": nets, "sensors": self.sensors, "strict": self.strict}

    def frames(self, question: str, *args: Any, bands: list[Band] | None = None, ordered: bool = True,
               **kwargs: Any) -> Iterator[pd.DataFrame]:  # fmt: skip
        """The answer of `question` (servers, new_servers, clients,
        client_pairs, new_clients; any other query is one frame) as
        DataFrames of a band of addresses each, in the answer's order, their
        concatenation the query's answer: memory follows a band, not the
        answer (inventory.address_bands). Every frame answers from one
        snapshot of the store; each carries the answer's `attrs`.
        `bands` (from `bands`): answer in those only; not `ordered`: the
        frames as the bands give them, for a caller that counts or reduces."""
        inv = copy.copy(self)  # what is kept (sightings, identity facts) shared
        inv.store = snapshot_of(self.store)  # one snapshot for every band
        inv._only_bands, inv._ordered = bands, ordered
        banded = {"servers": inv._server_frames, "new_servers": inv._new_server_frames,
                  "clients": inv._client_frames, "client_pairs": inv._pair_frames,
                  "new_clients": inv._new_client_frames}  # fmt: skip
        if question in banded:
            return banded[question](*args, **kwargs)
        return iter([getattr(inv, question)(*args, **kwargs)])

    def bands(self, kind: str, since: DateLike = None, until: DateLike = None, host: Many = None,
              by_port: bool = True, lists: bool = False) -> list[Band]:  # fmt: skip
        """The address bands (inventory.address_bands) of the servers
        (`kind` "servers") or clients ("clients") seen in [since, until) of
        `host` (every host of the networks when None), sized by their ports
        (`by_port`) or their rows (client pairs), and with `lists` by the
        server rows' client lists they merge too: a band list for `frames`,
        so several questions answer band by band alike."""
        nets = resolve_nets(self._filters(host)["nets"])
        few = nets is not None and all(n.version == 4 for n in nets)
        if few and sum(n.num_addresses for n in nets or []) <= ONE_BAND_HOSTS:
            return [None]  # a few hosts' answer (at most 131,070 ports each) is one band, found without a read
        column = "server_h" if kind == SERVERS else "client_h"
        found = address_bands(self.store, kind, self.when(since), self.when(until), serving(self.strict),
                              sensor_list(self.sensors), nets, column, by_port=by_port, lists=lists)  # fmt: skip
        self._weighed = lists and found == [None]
        return found

    def batches(self, question: str, *args: Any, **kwargs: Any) -> Iterator[pa.RecordBatch]:
        """The answer of `question` (see frames) as Arrow record batches,
        every column of export.COLUMN_TYPES with its type in every batch
        (the others text): for notebooks that write or reduce an answer too
        big for one DataFrame."""
        from synack.inventory.export import arrow_table

        for frame in self.frames(question, *args, **kwargs):
            yield from arrow_table(frame).to_batches()

    def _banded(self, kind: str, start: DateLike, end: DateLike, filters: Filters,
                answer: Callable[[Band, Filters], pd.DataFrame],
                order: list[str] | None, by_port: bool = True,
                lists: bool = False) -> Iterator[pd.DataFrame]:  # fmt: skip
        """`answer` (a query's answer within a band, narrowed by the filters
        given) once per band of the range's `kind` hosts (see bands); `order`: the answer's sort when it is not
        by that host (its frames are then gathered and sorted)."""
        bands = self._only_bands
        if bands is None:
            bands = self.bands(kind, start, end, filters.get("host"), by_port, lists)
        if bands == [None]:
            yield answer(None, filters)
            return
        each: Filters = {k: v for k, v in filters.items() if k not in ("sort", "limit")}  # type: ignore[assignment]
        frames = self._band_answers(kind, bands, lambda band: answer(band, each))
        sort, limit = list(RowFilter.of(sort=filters.get("sort")).sort), filters.get("limit")
        if not self._ordered or (not sort and order is None):
            yield from limited(frames, limit)
        else:
            yield from sorted_frames(frames, [*sort, *(order or [])], limit)

    def _band_answers(self, kind: str, bands: list[Band], answer: Callable[[Band], pd.DataFrame]
                      ) -> Iterator[pd.DataFrame]:  # fmt: skip
        """`answer` of each band, the heap given back after each. Bands of
        clients read the client files once, split by band (inventory.band_split):
        this Inventory (a copy of `frames`' own) answers each band from its part."""
        if kind != CLIENTS or len(bands) < 2 or not all(b and any(n.version == 4 for n in b) for b in bands):
            yield from (_given_back(answer(band)) for band in bands)
            return
        whole = snapshot_of(self.store)
        with BandSplit.of(whole, bands) as split:
            try:
                for i, band in enumerate(bands):
                    self.store = split.reading(i)
                    yield _given_back(answer(band))
            finally:
                self.store = whole

    def _answer(self, df: pd.DataFrame, since: DateLike, until: DateLike, filters: Filters,
                hosts: tuple[str, ...] = ("server_h",)) -> pd.DataFrame:  # fmt: skip
        """`df` narrowed by `filters` (on its `hosts` columns), with what it
        answers in `df.attrs`: the UTC range (None: open), as_of, networks,
        sensors and strictness, for a caller to print rather than recompute;
        `whole_days` when the range cuts days whose records were pruned
        (those are answered whole)."""
        out = RowFilter.of(**filters).apply(df, hosts)
        out.attrs.update(
            since=self.when(since), until=self.when(until), as_of=self.as_of, strict=self.strict,
            nets=[str(n) for n in resolve_nets(self.nets) or []] or "all", sensors=sensor_list(self.sensors) or "all",
        )  # fmt: skip
        if self.when(since) is not None or self.when(until) is not None:
            widened = widened_days(read_catalog(self.store), self.when(since), self.when(until))
            if widened:
                out.attrs["whole_days"] = widened
        return out

    def _marked(self, df: pd.DataFrame, host: str) -> pd.DataFrame:
        """`df` with an `allowed` column (the allowlist matches `host`, proto
        and server_p) when this Inventory has an allowlist; as it is otherwise."""
        if not self.allowed:
            return df
        return df.assign(allowed=allowed_mask(df, self.allowed, host))

    def servers(self, since: DateLike = None, until: DateLike = None, **filters: Unpack[Filters]) -> pd.DataFrame:
        """Server ports seen in [since, until) (see inventory.server_ports.servers),
        `first_seen` their all-time first sighting, `first_in_range` the first
        in the range and `new` true for those first seen in it;
        with an allowlist, an `allowed` column marks the expected ones; then
        what each server is (product, version, tls_names, host_names: see
        inventory.identities).
        `filters` (host, port, proto, service, sort, limit) narrow the answer."""
        return joined(self.frames("servers", since, until, **filters))

    def _server_frames(self, since: DateLike = None, until: DateLike = None,
                       **filters: Unpack[Filters]) -> Iterator[pd.DataFrame]:  # fmt: skip
        host = filters.get("host")

        def answer(band: Band, wanted: Filters) -> pd.DataFrame:
            where = self._filters(host, band)
            # One band weighed with its rows and lists is merged at once: not weighed again by rows.
            at_once = band is not None or (self._weighed and self._only_bands is None)
            found = server_ports.servers(self.store, self.when(since), self.when(until), in_band=at_once,
                                         answers_all_ports=self.answers_all_ports, **where)  # fmt: skip
            found = self._first_sightings(found, since, until,
                                          lambda: self._firsts("servers", host, band, where, found),
                                          server_ports.KEY)  # fmt: skip
            return self._answer(self._identified(self._marked(found, "server_h"), until), since, until, wanted)

        return self._banded(SERVERS, since, until, filters, answer, None, lists=True)

    def _first_sightings(self, found: pd.DataFrame, since: DateLike, until: DateLike,
                         sightings: Callable[[], pd.DataFrame], key: list[str]) -> pd.DataFrame:  # fmt: skip
        """`found` (rows of a range) with `first_seen` the all-time first
        sighting (what makes a port new), `first_in_range` the first inside
        [since, until), and `new`: first seen in the range. Without `since`
        the range starts at the first record: the two are the same."""
        found = found.copy()
        found.insert(list(found.columns).index("first_seen") + 1, "first_in_range", found["first_seen"])
        if since is not None and not found.empty:
            first = sightings()[[*key, "first_seen"]].astype({"server_p": found["server_p"].dtype})
            found = found.drop(columns="first_seen").merge(first, on=key, how="left")
            found.insert(list(found.columns).index("first_in_range"), "first_seen", found.pop("first_seen"))
        start, end = self.when(since), self.when(until)
        new = pd.Series(True, index=found.index)
        if start is not None:
            new &= found["first_seen"] >= pd.Timestamp(start)
        if end is not None:
            new &= found["first_seen"] < pd.Timestamp(end)
        return found.assign(new=new.astype(bool))

    def hosts_answering_all(self, since: DateLike = None, until: DateLike = None) -> pd.DataFrame:
        """Hosts that serve `answers_all_ports` TCP ports or more in [since,
        until), most of them quiet (a SYN proxy, tarpit or honeypot): see
        inventory.server_ports.answering_all for the columns."""
        found = server_ports.servers(self.store, self.when(since), self.when(until), **self._filters())
        return server_ports.answering_all(found, self.answers_all_ports).reset_index(drop=True)

    def clients(self, since: DateLike = None, until: DateLike = None, **filters: Unpack[Filters]) -> pd.DataFrame:
        """Client ports in [since, until) (see inventory.client_ports.clients),
        with first_seen, first_in_range and new as `servers` has them;
        with an allowlist, `allowed` marks those it matches (by client, as
        new_clients does). `host` matches the client."""
        return joined(self.frames("clients", since, until, **filters))

    def _client_frames(self, since: DateLike = None, until: DateLike = None,
                       **filters: Unpack[Filters]) -> Iterator[pd.DataFrame]:  # fmt: skip
        host = filters.get("host")

        def answer(band: Band, wanted: Filters) -> pd.DataFrame:
            where = self._filters(host, band)
            found = client_ports.clients(self.store, self.when(since), self.when(until), **where)
            found = self._first_sightings(found, since, until,
                                          lambda: self._firsts("clients", host, band, where, found),
                                          ["client_h", "proto", "server_p"])  # fmt: skip
            return self._answer(self._marked(found, "client_h"), since, until, wanted, ("client_h",))

        if self._only_bands is None:  # tried as one band first: weighing the bands reads the range once more
            budget = client_ports.KEY_BUDGET.set(band_sizes.ANSWER_ROWS)
            try:
                whole = answer(None, filters)
            except client_ports.TooManyKeys:
                whole = None
            finally:
                client_ports.KEY_BUDGET.reset(budget)
            if whole is not None:
                yield whole
                return
        yield from self._banded(CLIENTS, since, until, filters, answer, None)

    def client_pairs(self, since: DateLike = None, until: DateLike = None,
                     **filters: Unpack[Filters]) -> pd.DataFrame:  # fmt: skip
        """One row per client, server and port (see inventory.client_ports.client_pairs);
        with an allowlist, `allowed` marks the pairs whose server it matches.
        `host` matches the client or the server."""
        return joined(self.frames("client_pairs", since, until, **filters))

    def _pair_frames(self, since: DateLike = None, until: DateLike = None,
                     **filters: Unpack[Filters]) -> Iterator[pd.DataFrame]:  # fmt: skip
        start, end, host = self.when(since), self.when(until), filters.get("host")
        pairs = client_ports.client_pairs
        if host is None:

            def answer(band: Band, wanted: Filters) -> pd.DataFrame:
                found = pairs(self.store, start, end, **self._filters(None, band))
                return self._answer(self._marked(found, "server_h"), since, until, wanted, ("client_h", "server_h"))

            return self._banded(CLIENTS, since, until, filters, answer, None, by_port=False)
        else:  # the host's pairs as a client, then as a server: two narrow reads, not every pair
            hosts = list(RowFilter.of(host=host).hosts)
            both = pd.concat([pairs(self.store, start, end, **self._filters(host)),
                              pairs(self.store, start, end, **self._filters(), servers=hosts)])  # fmt: skip
            key = client_ports.PAIR_KEY
            found = sort_by_address(both.drop_duplicates(key), key).reset_index(drop=True)
        return iter([self._answer(self._marked(found, "server_h"), since, until, filters, ("client_h", "server_h"))])

    def closed(self, since: DateLike = None, until: DateLike = None, **filters: Unpack[Filters]) -> pd.DataFrame:
        """Ports that answered SYNs with RST (see inventory.server_ports.closed);
        with an allowlist, `allowed` marks the ports it expects."""
        found = server_ports.closed(
            self.store, self.when(since), self.when(until), **self._filters(filters.get("host"))
        )
        return self._answer(self._marked(found, "server_h"), since, until, filters)

    def hosts_serving(self, since: DateLike = None, until: DateLike = None) -> list[str]:
        """The addresses that served in [since, until), in address order."""
        return server_ports.hosts_serving(self.store, self.when(since), self.when(until), **self._filters())

    def server_sightings(self, host: Many = None) -> pd.DataFrame:
        """Every server port (of the servers `host` names, when given)
        merged over all time (read once per Inventory)."""
        return self._kept_sightings("servers", host, server_ports.server_sightings)

    def client_sightings(self, host: Many = None) -> pd.DataFrame:
        """Every client port (of the clients `host` names, when given)
        merged over all time (read once per Inventory)."""
        return self._kept_sightings("clients", host, client_ports.client_sightings)

    def _server_sightings(self, host: Many, band: Band, where: dict[str, Any]) -> pd.DataFrame:
        """server_sightings of `host` (kept), or of one band (`where`: its filters; read each time)."""
        if band is None:
            return self.server_sightings(host)
        return server_ports.server_sightings(self.store, in_band=True, **where)

    def _firsts(self, kind: str, host: Many, band: Band, where: dict[str, Any], found: pd.DataFrame) -> pd.DataFrame:
        """The all-time first sighting of each server port (`kind` "servers")
        or client port ("clients") of `found`, of `host` or of one band
        (`where`: its filters): from the sightings this Inventory keeps, when
        it keeps them, else read for those keys alone (server_firsts, client_firsts)."""
        if band is None and f"{kind} {host}" in self._sightings:
            return self._sightings[f"{kind} {host}"]
        read = server_ports.server_firsts if kind == SERVERS else client_ports.client_firsts
        return read(self.store, found, **where)

    def _kept_sightings(self, kind: str, host: Many, read: Callable[..., pd.DataFrame]) -> pd.DataFrame:
        key = f"{kind} {host}"
        if key not in self._sightings:
            self._sightings[key] = read(self.store, **self._filters(host))
        return self._sightings[key]

    def new_servers(self, since: DateLike = "1d", until: DateLike = None, *, show_allowed: bool = False,
                    **filters: Unpack[Filters]) -> pd.DataFrame:  # fmt: skip
        """Server ports first seen in [since, until), allowlisted ones left out
        (or marked), with what each server is (see `servers`)."""
        return joined(self.frames("new_servers", since, until, show_allowed=show_allowed, **filters))

    def _new_server_frames(self, since: DateLike = "1d", until: DateLike = None, *, show_allowed: bool = False,
                           **filters: Unpack[Filters]) -> Iterator[pd.DataFrame]:  # fmt: skip
        host = filters.get("host")

        def answer(band: Band, wanted: Filters) -> pd.DataFrame:
            where = self._filters(host, band)
            found = server_ports.new_servers(
                self.store, self.when(since), self.when(until), allow=self.allowed, show_allowed=show_allowed,
                sightings=self._server_sightings(host, band, where), answers_all_ports=self.answers_all_ports,
                **where,
            )  # fmt: skip
            return self._answer(self._identified(found, until), since, until, wanted)

        return self._banded(SERVERS, None, None, filters, answer, ["first_seen", "server_h", "server_p"])

    def new_clients(self, since: DateLike = "1d", until: DateLike = None, *, show_allowed: bool = False,
                    **filters: Unpack[Filters]) -> pd.DataFrame:  # fmt: skip
        """Client ports first seen in [since, until), allowlisted services left out (or marked)."""
        return joined(self.frames("new_clients", since, until, show_allowed=show_allowed, **filters))

    def _new_client_frames(self, since: DateLike = "1d", until: DateLike = None, *, show_allowed: bool = False,
                           **filters: Unpack[Filters]) -> Iterator[pd.DataFrame]:  # fmt: skip
        host = filters.get("host")
        sightings = self._sightings.get(f"clients {host}")
        fresh = None
        if sightings is None and self._only_bands is None:  # few new ports are one band, known before any is merged
            fresh = self._new_ports(host, since, until)
            if sum(kept.count() for kept in fresh.values()) > band_sizes.ANSWER_ROWS:
                fresh = None

        def answer(band: Band, wanted: Filters) -> pd.DataFrame:
            where = self._filters(host, band)
            found = client_ports.new_clients(
                self.store, self.when(since), self.when(until), allow=self.allowed, show_allowed=show_allowed,
                sightings=sightings if band is None else None, fresh=fresh if band is None else None, **where,
            )  # fmt: skip
            return self._answer(found, since, until, wanted, ("client_h",))

        if fresh is not None:
            return iter([answer(None, filters)])
        return self._banded(CLIENTS, since, until, filters, answer, ["first_seen", "client_h", "server_p"])

    def new_client_times(self, since: DateLike = "1d", until: DateLike = None) -> np.ndarray:
        """The first uses (µs, ascending) of the client ports `new_clients`
        finds in [since, until) with no filter: counted without their rows
        (client_ports.new_ports, first_uses)."""
        return client_ports.first_uses(self._new_ports(None, since, until), self.allowed)

    def keep_new_client_ports(self, since: DateLike, until: DateLike = None) -> None:
        """Tell the client ports of [since, until) new once (client_ports.new_ports)
        and keep them: `new_clients` and `new_client_times` of any range inside it
        (with no host filter) are then answered from them, not from a new read of
        the history (the daily report asks for its day and the seven before)."""
        start, end = self.when(since), self.when(until)
        self._kept_new_ports = (start, end, self._new_ports(None, start, end))

    def _new_ports(self, host: Many, since: DateLike, until: DateLike) -> client_ports.NewPorts:
        """client_ports.new_ports of [since, until) with this Inventory's settings, narrowed to `host`;
        from the ports kept (keep_new_client_ports) when they cover the range."""
        start, end = self.when(since), self.when(until)
        if host is None and self._kept_new_ports is not None:
            lo, hi, kept = self._kept_new_ports
            if (lo is None or (start is not None and lo <= start)) and (hi is None or (end is not None and end <= hi)):
                return client_ports.new_within(kept, start, end)
        where = self._filters(host, None)
        return client_ports.new_ports(self.store, start, end, where["sensors"], where["nets"], where["strict"])

    def gone_servers(self, until: DateLike = None, *, idle_days: float = 7,
                     **filters: Unpack[Filters]) -> pd.DataFrame:  # fmt: skip
        """Server ports idle for `idle_days` at `until` (default: `as_of`);
        with an allowlist, `allowed` marks the expected ones; with what each
        server was (see `servers`)."""
        at = self.when(until) or self.as_of
        found = server_ports.gone_servers(self.store, at, idle_days=idle_days, **self._filters(filters.get("host")))
        return self._answer(self._identified(self._marked(found, "server_h"), at), None, at, filters)

    def identity_facts(self, until: DateLike = None) -> Any:
        """The store's identity facts (a pyarrow Table, ingest.server_identity's
        IDENTITY_SCHEMA) first seen before `until`, merged (read once per Inventory and `until`)."""
        key = f"identity {self.when(until)}"
        if key not in self._identity:
            self._identity[key] = identities.identity_facts(self.store, self.when(until))
        return self._identity[key]

    def _identified(self, df: pd.DataFrame, until: DateLike) -> pd.DataFrame:
        """`df` with what its servers are: product, version, tls_names, host_names (inventory.identities)."""
        return identities.described(df, self.identity_facts(until))

    def changed_ports(self, since: DateLike = "1d", until: DateLike = None,
                      **filters: Unpack[Filters]) -> pd.DataFrame:  # fmt: skip
        """Server ports whose software or certificate changed in [since,
        until), one row per change (see inventory.identities.changed_ports),
        of servers in this Inventory's networks."""
        facts = identities.identity_facts(self.store, self.when(until), nets=resolve_nets(self.nets),
                                          sensors=sensor_list(self.sensors))  # fmt: skip
        found = identities.changed_ports(facts, self.when(since), self.when(until))
        return self._answer(found, since, until, filters)

    def notices(self, since: DateLike = None, until: DateLike = None, **filters: Unpack[Filters]) -> pd.DataFrame:
        """The sensor's SynAck notices raised in [since, until), oldest first
        (see inventory.notices; notice.zeek raises them, ingest keeps them)."""
        found = notices.sensor_notices(self.store, self.when(since), self.when(until),
                                       nets=resolve_nets(self.nets), sensors=sensor_list(self.sensors))  # fmt: skip
        return self._answer(found, since, until, filters)

    def host(self, address: str, since: DateLike = None, until: DateLike = None) -> HostView:
        """Everything the store knows of one host in [since, until): the
        ports it served and refused, what it connects to, its sensors, new
        and gone ports and the sensor's notices (see inventory.host_view)."""
        return host_view(self, address, since, until)

    def export_known(self, path: Path | str, *, force: bool = False, filter_path: Path | str | None = None
                     ) -> known_export.KnownExport:  # fmt: skip
        """Replace `path` with the sensor's baseline: every server port seen
        (within these networks and sensors, all time) and the allowlist's
        port ranges, as the Zeek table notice.zeek reads (see
        inventory.known_export); with `filter_path`, the server ports go
        there as a Bloom filter (inventory.known_filter) instead. Raises InventoryError, leaving `path` as it
        was, when the sensors name none the store knows, when the selection
        holds no server port while the store has some, or when more than
        known_export.MAX_DROP of the current file's rows would go (unless
        `force`); and when it cannot be written."""
        snap = snapshot_of(self.store)
        known_sensors = sorted({sensor for _, sensor, rows, _ in snap.day_sensors() if rows and sensor})
        known_export.check_selection(sensor_list(self.sensors), known_sensors, "sensor")
        servers = server_ports.servers(snap, nets=self.nets, sensors=self.sensors, strict=self.strict)
        if servers.empty and not force and snap.day_sensors():
            everywhere = server_ports.servers(snap, nets="all")
            if not everywhere.empty:
                raise InventoryError(
                    f"no server port of the store is within these networks and sensors (the store has "
                    f"{len(everywhere):,} in all): refusing to write an empty baseline to {path} (--force writes it)"
                )
        try:
            return known_export.export_known(path, servers, self.allowed, force=force, filter_path=filter_path)
        except OSError as err:
            raise InventoryError(f"cannot write {err.filename or path}: {err.strerror or err}") from None

    def status(self) -> dict[str, Any]:
        """What the store holds: ledger version, days, records and, per
        sensor, records and newest record (UTC); the sources ingested, the
        lines quarantined, the sensor notices and identity facts kept (counted
        per file) and the last ingest; the
        hosts that answered every port on the newest day (host -> ports); the
        years with first sightings kept and how many days' records were pruned; whether an older synack wrote
        it (queries then aggregate its records in memory); and the settings
        of this Inventory."""
        snap = snapshot_of(self.store)
        catalog = read_catalog(snap)
        per_sensor: dict[str, dict[str, Any]] = {}
        for _day, sensor, rows, newest in snap.day_sensors():
            entry = per_sensor.setdefault(sensor, {"records": 0, "newest": None})
            entry["records"] += rows
            when = dt.datetime.fromtimestamp(newest / 1e6, dt.UTC)
            entry["newest"] = max(entry["newest"], when) if entry["newest"] else when
        days = catalog.days
        answering = (
            self.hosts_answering_all(days[-1], dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1))
            if days
            else pd.DataFrame(columns=server_ports.ANSWERING_ALL_COLUMNS)
        )
        return {
            "store": str(self.store),
            "ledger_version": catalog.version,
            "days": len(days),
            "first_day": days[0] if days else None,
            "last_day": days[-1] if days else None,
            "records": sum(s["records"] for s in per_sensor.values()),
            "sensors": per_sensor,
            **snap.sources_summary(),
            "sensor_notices": snap.notice_count(),
            "identity_facts": snap.identity_count(),
            "monthly_rollups": len(catalog.rollups),
            "sightings_years": sorted(catalog.sightings),
            "pruned_days": len(catalog.pruned),
            "upgrade_needed": bool(catalog.legacy_days),
            "hosts_answering_all": {h: int(n) for h, n in zip(answering["server_h"], answering["ports"])},
            "settings": {
                "nets": [str(n) for n in resolve_nets(self.nets) or []] or "all",
                "sensors": self.sensors or "all",
                "allowlist_entries": len(self.allowed),
                "strict": self.strict,
                "as_of": self.as_of.isoformat(timespec="seconds"),
            },
        }


def _given_back(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`, the heap its band freed given back first (ingest.heap)."""
    heap.give_back()
    return frame
