"""What a server is: the identity facts of the sensor's logs joined to server ports, and their changes.

The store keeps identity facts (ingest.server_identity, through the
snapshot's `read_identity`): software at a host:port, the certificates
and SNIs a host:port's TLS showed, certificates by fingerprint, DHCP
leases. They join an answer's rows by address and port (whatever the
transport), and by time:

* `product`, `version`: the software seen last at the port (before the
  answer's end);
* `tls_names`: the subject CN and DNS names of the certificates the
  port presented, then the SNIs clients asked for that no certificate
  names, marked "(sni)" (a client's claim, not the server's);
* `host_names`: the names DHCP leased the address to, then the names DNS
  answers gave it, while the row's server was seen: "name (dhcp
  first..last)" (the client's claim: a lease moves, so a name shows only
  for the time it held the address), "name (dns first..last)" (an answer,
  valid for its TTL); at most TLS_NAMES_SHOWN, the rest counted.

Each is empty text where the sensor logged nothing.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.snapshot import IDENTITY_SCHEMA, TIMESTAMP, merged_facts
from synack.inventory.networks import Network, in_networks
from synack.inventory.store_reader import StoreLike, snapshot_of

IDENTITY_COLUMNS = ["product", "version", "tls_names", "host_names"]
#: The columns of changed_ports and their types, whatever the data (an empty answer included).
CHANGED_TYPES = {
    "server_h": "str", "server_p": "int64", "what": "str", "before": "str", "after": "str",
    "changed_at": "datetime64[us, UTC]", "before_last_seen": "datetime64[us, UTC]", "sensors": "str",
}  # fmt: skip
CHANGED_COLUMNS = list(CHANGED_TYPES)
#: Names shown in one tls_names cell; more are counted ("+12 more").
TLS_NAMES_SHOWN = 16
_KEY = ["host", "port"]


def identity_facts(store: StoreLike, until: dt.datetime | None = None, *, nets: list[Network] | None = None,
                   sensors: list[str] | None = None) -> pa.Table:  # fmt: skip
    """The store's identity facts merged across files (IDENTITY_SCHEMA), of
    facts first seen before `until`, of hosts in `nets` (certificates,
    which have no host, are all kept) and seen by `sensors` (None: all)."""
    table = snapshot_of(store).read_identity()
    keep = pa.array(np.ones(len(table), dtype=bool))
    if until is not None:
        keep = pc.and_(keep, pc.fill_null(pc.less(table.column("first_seen"), pa.scalar(until, TIMESTAMP)), True))
    if sensors is not None:
        keep = pc.and_(keep, pc.fill_null(pc.is_in(table.column("sensor"), pa.array(sensors, pa.string())), False))
    if nets is not None:
        hosts = table.column("host").combine_chunks()
        inside = pa.array(in_networks(pc.fill_null(hosts, "0.0.0.0"), nets))
        keep = pc.and_(keep, pc.or_(pc.is_null(hosts), inside))
    return merged_facts([table.filter(keep)])


def described(df: pd.DataFrame, facts: pa.Table, host: str = "server_h", port: str = "server_p") -> pd.DataFrame:
    """`df` (rows with `host`, `port` and, for host names, first_seen and
    last_seen) with IDENTITY_COLUMNS added after its other columns (see the module)."""
    out = df.copy()
    if out.empty:
        for c in IDENTITY_COLUMNS:
            out[c] = pd.Series(dtype="str")  # text, as a full answer's columns are
        return out
    keys = out[[host, port]].rename(columns={host: "host", port: "port"}).astype({"port": "int64"})
    software = _latest_software(facts)
    names = _tls_names(facts)
    joined = keys.merge(software, on=_KEY, how="left").merge(names, on=_KEY, how="left")
    for c in ("product", "version", "tls_names"):
        out[c] = joined[c].fillna("").to_numpy()
    out["host_names"] = _host_names(out, facts, host)
    return out


def folded(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its IDENTITY_COLUMNS folded into one `identity` text for a
    narrow table ("OpenSSH 6.6.1p1; x230; pc-7 (dhcp ...)"), left out when
    no row has one; `df` itself when it has none of them."""
    if not all(c in df for c in IDENTITY_COLUMNS):
        return df
    parts = [(df["product"].fillna("") + " " + df["version"].fillna("")).str.strip(),
             df["tls_names"].fillna(""), df["host_names"].fillna("")]  # fmt: skip
    text = ["; ".join(p for p in row if p) for row in zip(*parts)]
    out = df.drop(columns=IDENTITY_COLUMNS)
    if any(text):
        out["identity"] = text
    return out


def _frame(facts: pa.Table, kind: str, columns: list[str]) -> pd.DataFrame:
    rows = facts.filter(pc.equal(facts.column("kind"), kind)).select(columns).to_pandas()
    if "port" in rows:
        rows = rows.dropna(subset=["port"]).astype({"port": "int64"})
    return rows


def _certificates(facts: pa.Table) -> pd.DataFrame:
    """fingerprint, subject and names of each certificate (one row per fingerprint: the first, as sensors agree)."""
    return _frame(facts, "certificate", ["fingerprint", "subject", "names"]).drop_duplicates("fingerprint")


def _latest_software(facts: pa.Table) -> pd.DataFrame:
    """Per host and port, the product and version seen last (ties: the greatest text)."""
    rows = _frame(facts, "software", ["host", "port", "product", "version", "last_seen"])
    if rows.empty:
        return pd.DataFrame(columns=[*_KEY, "product", "version"])
    rows = rows.fillna({"product": "", "version": ""})
    rows = rows.sort_values(["last_seen", "product", "version"], kind="stable")
    return rows.drop_duplicates(_KEY, keep="last")[[*_KEY, "product", "version"]]


def _common_name(subject: pd.Series) -> pd.Series:
    """The CN of RFC 2253 subjects ("CN=x,O=y" -> "x"; Suricata's "O=y, CN=x" too); empty where there is none."""
    return subject.fillna("").str.extract(r"(?:^|,)\s*CN=((?:[^,\\]|\\.)*)", expand=False).fillna("")


def _tls_names(facts: pa.Table) -> pd.DataFrame:
    """Per host and port, the certificates' names then the SNIs no certificate names, comma-joined."""
    tls = _frame(facts, "tls", ["host", "port", "name", "fingerprint", "subject"])
    if tls.empty:
        return pd.DataFrame(columns=[*_KEY, "tls_names"])
    certs = _certificates(facts)
    presented = tls.dropna(subset=["fingerprint"]).drop(columns="subject").merge(certs, on="fingerprint")
    from_subject = pd.concat([presented[[*_KEY, "subject"]], tls.dropna(subset=["subject"])[[*_KEY, "subject"]]])
    verified = pd.concat([
        from_subject.assign(text=_common_name(from_subject["subject"]))[[*_KEY, "text"]],
        presented[[*_KEY, "names"]].explode("names").rename(columns={"names": "text"}),
    ]).dropna()  # fmt: skip
    verified = verified[verified["text"] != ""].drop_duplicates()
    sni = tls.dropna(subset=["name"])[[*_KEY, "name"]].rename(columns={"name": "text"}).drop_duplicates()
    claimed = sni.merge(verified, how="left", indicator=True)
    claimed = claimed[claimed["_merge"] == "left_only"].drop(columns="_merge")
    claimed["text"] = claimed["text"] + " (sni)"
    both = pd.concat([verified.assign(order=0), claimed.assign(order=1)]).sort_values([*_KEY, "order", "text"])
    return both.groupby(_KEY, sort=False)["text"].agg(_joined_names).rename("tls_names").reset_index()


def _joined_names(texts: pd.Series) -> str:
    shown = list(texts)[:TLS_NAMES_SHOWN]
    more = len(texts) - len(shown)
    return ", ".join(shown) + (f", +{more} more" if more else "")


def _host_names(df: pd.DataFrame, facts: pa.Table, host: str) -> np.ndarray:
    """Per row of `df`, the DHCP and DNS names its address held while it was seen."""
    leases = pd.concat([_frame(facts, kind, ["host", "name", "first_seen", "last_seen"]).assign(via=label)
                        for kind, label in (("lease", "dhcp"), ("dns", "dns"))])  # fmt: skip
    empty = np.full(len(df), "", dtype=object)
    if leases.empty or "first_seen" not in df or "last_seen" not in df:
        return empty
    rows = pd.DataFrame(
        {
            "row": np.arange(len(df)),
            "host": df[host].to_numpy(),
            "seen_from": pd.to_datetime(df["first_seen"], utc=True).array,
            "seen_until": pd.to_datetime(df["last_seen"], utc=True).array,
        }
    )
    pairs = rows.merge(leases, on="host")
    pairs = pairs[(pairs["first_seen"] <= pairs["seen_until"]) & (pairs["last_seen"] >= pairs["seen_from"])]
    if pairs.empty:
        return empty
    spans = pairs.groupby(["row", "via", "name"], as_index=False).agg(first=("first_seen", "min"),
                                                                      last=("last_seen", "max"))  # fmt: skip
    spans["text"] = (spans["name"] + " (" + spans["via"] + " " + spans["first"].dt.strftime("%Y-%m-%d %H:%M") + ".."
                     + spans["last"].dt.strftime("%Y-%m-%d %H:%M") + ")")  # fmt: skip
    # DHCP names first (the host's own claim), then DNS names, each oldest first.
    joined = spans.sort_values(["row", "via", "first"]).groupby("row")["text"].agg(_joined_names)
    empty[joined.index.to_numpy()] = joined.to_numpy()
    return empty


HOST_FACT_COLUMNS = ["kind", "port", "product", "version", "name", "subject", "first_seen", "last_seen", "seen",
                     "sensor"]  # fmt: skip


def host_facts(facts: pa.Table, host: str) -> pd.DataFrame:
    """What the sensor's logs say of one address (HOST_FACT_COLUMNS): its
    software per port, the certificates (`subject`, with their names in
    `name`) and SNIs (`name`) of its TLS ports, its DHCP leases (`name`,
    first_seen to last_seen the lease); sorted by kind, port, first_seen."""
    mine = facts.filter(pc.fill_null(pc.equal(facts.column("host"), host), False))
    rows = mine.to_pandas()
    if rows.empty:
        return pd.DataFrame(columns=HOST_FACT_COLUMNS)
    certs = _certificates(facts).rename(columns={"subject": "cert_subject"})
    rows = rows.drop(columns="names").merge(certs, on="fingerprint", how="left")
    named = rows["names"].map(lambda v: ", ".join(v) if isinstance(v, (list, np.ndarray)) else "")
    rows["subject"] = rows["subject"].fillna(rows["cert_subject"])
    rows["name"] = rows["name"].where(rows["name"].notna(), named)
    rows["port"] = rows["port"].astype("Int64")
    return rows.sort_values(["kind", "port", "first_seen"], kind="stable")[HOST_FACT_COLUMNS].reset_index(drop=True)


def changed_ports(facts: pa.Table, start: dt.datetime | None = None, end: dt.datetime | None = None) -> pd.DataFrame:
    """Server ports whose software (product and version) or TLS certificate
    changed in [start, end): one row per change (CHANGED_COLUMNS). `what`
    is "software" or "certificate"; `before` and `after` the product and
    version, or the certificate's CN (its fingerprint's first 16 digits
    when x509.log did not name it) and fingerprint; `changed_at` when the
    new one was first seen, `before_last_seen` when the old one was last
    seen, `sensors` the sensor that saw the new one first. A port that shows
    two certificates by turns changes once, when the second first shows.
    Sorted by changed_at."""
    software = _frame(facts, "software", ["sensor", "host", "port", "product", "version", "first_seen", "last_seen"])
    software["label"] = (software["product"].fillna("?") + " " + software["version"].fillna("")).str.strip()
    tls = _frame(facts, "tls", ["sensor", "host", "port", "fingerprint", "first_seen", "last_seen"])
    tls = tls.dropna(subset=["fingerprint"])
    tls = tls.merge(_certificates(facts).drop(columns="names"), on="fingerprint", how="left")
    cn = _common_name(tls["subject"])
    tls["label"] = cn.where(cn != "", tls["fingerprint"].str[:16]) + " [" + tls["fingerprint"].str[:16] + "]"
    changes = pd.concat([_changes(software, "software"), _changes(tls, "certificate")], ignore_index=True)
    if start is not None:
        changes = changes[changes["changed_at"] >= pd.Timestamp(start)]
    if end is not None:
        changes = changes[changes["changed_at"] < pd.Timestamp(end)]
    ordered = changes.sort_values(["changed_at", "server_h", "server_p"], kind="stable").reset_index(drop=True)
    return ordered.astype(CHANGED_TYPES)


def _changes(rows: pd.DataFrame, what: str) -> pd.DataFrame:
    """The label changes of each host:port of `rows`, in the order the labels were first seen."""
    if rows.empty:
        return pd.DataFrame(columns=CHANGED_COLUMNS)
    first = rows.sort_values(["first_seen", "sensor"], kind="stable")
    merged = first.groupby([*_KEY, "label"], as_index=False, sort=False).agg(
        first_seen=("first_seen", "min"), last_seen=("last_seen", "max"), sensor=("sensor", "first")
    )
    merged = merged.sort_values([*_KEY, "first_seen"], kind="stable")
    previous = merged.groupby(_KEY, sort=False).shift(1)
    changed = previous["label"].notna()
    out = pd.DataFrame({
        "server_h": merged["host"], "server_p": merged["port"].astype("int64"), "what": what,
        "before": previous["label"], "after": merged["label"], "changed_at": merged["first_seen"],
        "before_last_seen": previous["last_seen"], "sensors": merged["sensor"],
    })[changed.to_numpy()]  # fmt: skip
    return out[CHANGED_COLUMNS]


__all__ = ["CHANGED_COLUMNS", "IDENTITY_COLUMNS", "IDENTITY_SCHEMA", "changed_ports", "described", "folded",
           "host_facts", "identity_facts"]  # fmt: skip
