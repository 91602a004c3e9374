"""What a server is, from the sensor's own logs: software, TLS names and certificates, DHCP leases, DNS names.

Zeek's `software`, `ssh`, `ssl`, `x509`, `dhcp` and `dns` logs are sources of
their own kinds (one per log, ASCII and JSON). Each chunk of one is
reduced on the way in to IDENTITY_SCHEMA rows, one per distinct fact
with when it was first and last seen and how often, in
`identity/<source-id>-<chunk>.parquet` beside the records:

* `software`: a server port's product and version (software.log's server
  types, and the server banner of every ssh.log connection: Zeek's
  software framework tracks local hosts only by default);
* `tls`: a server port's leaf certificate fingerprint and the SNI a
  client asked for (`name`: claimed by the client, not verified);
* `certificate`: a certificate's subject, issuer, validity and DNS
  names (x509.log's host certificates, by fingerprint; the file id of
  an older Zeek's x509.log, which its ssl.log names, stands in);
* `lease`: a DHCP lease's address, the host name the client claimed, its
  MAC, and the time it was valid (`first_seen` to `last_seen`);
* `dns`: a name whose DNS answer was the address, valid from the answer
  to the end of its TTL (DNS_NAMES_PER_ADDRESS per address and chunk).

Text from the network is kept as text (escaped where it is shown), cut
to TEXT_CHARS, lists to NAMES_PER_CERTIFICATE; a row whose address is
not an address is not an identity and is dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest import addresses, arrays
from synack.ingest.arrays import one_array
from synack.ingest.errors import NotAZeekLog
from synack.ingest.normalize import DEFAULT_SENSOR, sensor_column
from synack.ingest.schema import TIMESTAMP
from synack.ingest.zeek_json import json_time

IDENTITY_DIR = "identity"
#: The Zeek logs read for identity, by their `#path`.
IDENTITY_LOGS = ("software", "ssh", "ssl", "x509", "dhcp", "dns")
#: Suricata's EVE files, read a second time for their tls, ssh, dhcp and dns events (ingest.suricata_identity).
SURICATA_EVE_IDENTITY = "suricata-eve-identity"
#: Longest text kept of one value (a product, a banner, a name, a subject).
TEXT_CHARS = 255
#: DNS names kept of one certificate (a CDN's certificate names hundreds).
NAMES_PER_CERTIFICATE = 64

SOFTWARE, TLS, CERTIFICATE, LEASE, DNS = "software", "tls", "certificate", "lease", "dns"
#: Names kept per address of one chunk of a dns.log, the most answered first (a CDN address has thousands).
DNS_NAMES_PER_ADDRESS = 32

IDENTITY_SCHEMA = pa.schema(
    [
        pa.field("sensor", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("host", pa.string()),
        pa.field("port", pa.uint16()),
        pa.field("product", pa.string()),
        pa.field("version", pa.string()),
        pa.field("banner", pa.string()),
        pa.field("name", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("subject", pa.string()),
        pa.field("issuer", pa.string()),
        pa.field("valid_from", TIMESTAMP),
        pa.field("valid_until", TIMESTAMP),
        pa.field("mac", pa.string()),
        pa.field("names", pa.list_(pa.string())),
        pa.field("first_seen", TIMESTAMP),
        pa.field("last_seen", TIMESTAMP),
        pa.field("seen", pa.uint64()),
    ]
)
#: The columns that tell one fact from another (the rest is when and how often, and the names).
FACT_COLUMNS = [f.name for f in IDENTITY_SCHEMA if f.name not in ("names", "first_seen", "last_seen", "seen")]


def identity_kind(log: str, json: bool) -> str:
    """The source kind of an identity log (`log` one of IDENTITY_LOGS)."""
    return f"zeek-{log}-json" if json else f"zeek-{log}"


#: Source kind -> the log it is.
IDENTITY_KINDS: dict[str, str] = {
    **{identity_kind(log, j): log for log in IDENTITY_LOGS for j in (False, True)},
    SURICATA_EVE_IDENTITY: "eve",
}
#: The identity kinds written in Zeek's ASCII format (a `#close` ends them).
ASCII_IDENTITY_KINDS = tuple(identity_kind(log, False) for log in IDENTITY_LOGS)


def json_identity_log(record: dict[str, Any]) -> str | None:
    """Which identity log a Zeek JSON record comes from, by its fields (None: none of them)."""
    if "software_type" in record and "name" in record:
        return "software"
    if "fingerprint" in record and ("certificate.subject" in record or "certificate" in record):
        return "x509"
    if "cert_chain_fps" in record or "cert_chain_fuids" in record or "ssl_history" in record or (
            "server_name" in record and "cipher" in record):  # fmt: skip
        return "ssl"
    if "auth_attempts" in record or ("server" in record and "client" in record and "host_key" in record):
        return "ssh"
    if "query" in record and ("answers" in record or "qtype_name" in record or "rcode" in record):
        return "dns"
    if "msg_types" in record or ("mac" in record and ("assigned_addr" in record or "assigned_ip" in record)):
        return "dhcp"
    return None


def normalize_identity(table: pa.Table, log: str, sensor: str | None = None) -> pa.Table:
    """The identity facts of a reader table of `log` (Zeek field names), a
    row per fact seen, not yet reduced (merged_facts reduces a chunk's).

    `sensor` names the sensor of rows whose log has no `sensor` field
    (DEFAULT_SENSOR when None). Raises NotAZeekLog when the table lacks
    what `log` must have.
    """
    if "ts" not in table.column_names:
        raise NotAZeekLog(f"not a Zeek {log} log: no ts column")
    rows = _READERS[log](table)
    given = {n: one_array(table.column(n)) for n in ("sensor", "_system_name") if n in table.column_names}
    named = sensor_column(given, len(table), sensor or DEFAULT_SENSOR).cast(pa.string())
    keep = rows.pop("_keep")
    if "_rows" in rows:  # a row per answer, not per line
        named = pc.take(named, rows.pop("_rows"))
    n = len(keep)
    columns = {**rows, "sensor": named}
    return pa.table({f.name: _as(columns.get(f.name), f.type, n) for f in IDENTITY_SCHEMA},
                    schema=IDENTITY_SCHEMA).filter(pc.fill_null(keep, False))  # fmt: skip


def reduce_identity(table: pa.Table) -> pa.Table:
    """One row per fact (FACT_COLUMNS) of IDENTITY_SCHEMA rows: first_seen
    the earliest, last_seen the latest, `seen` the sum, `names` the first
    row's; sorted by kind, host, port, first_seen."""
    if len(table) == 0:
        return IDENTITY_SCHEMA.empty_table()
    numbered = table.append_column("_row", pa.array(np.arange(len(table), dtype=np.int64)))
    grouped = numbered.group_by(FACT_COLUMNS, use_threads=False).aggregate(
        [("first_seen", "min"), ("last_seen", "max"), ("seen", "sum"), ("_row", "min")]
    )
    names = pc.take(table.column("names"), grouped.column("_row_min"))
    out = pa.table(
        {
            **{c: grouped.column(c) for c in FACT_COLUMNS},
            "names": names,
            "first_seen": grouped.column("first_seen_min"),
            "last_seen": grouped.column("last_seen_max"),
            "seen": grouped.column("seen_sum").cast(pa.uint64()),
        },
        schema=IDENTITY_SCHEMA,
    )
    return out.sort_by([("kind", "ascending"), ("host", "ascending"), ("port", "ascending"),
                        ("first_seen", "ascending")])  # fmt: skip


def first_column(table: pa.Table, names: tuple[str, ...], kind: pa.DataType) -> pa.Array:
    """arrays.first_column, but nulls where the column's values are not of
    `kind` (a JSON field that is a list where text was expected is no identity)."""
    try:
        return arrays.first_column(table, names, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.nulls(len(table), kind)


def merged_facts(tables: list[pa.Table]) -> pa.Table:
    """Identity facts of several files (or chunks) as one reduced table, the
    DNS names of each address capped again (DNS_NAMES_PER_ADDRESS)."""
    if not tables:
        return IDENTITY_SCHEMA.empty_table()
    return capped_dns(reduce_identity(pa.concat_tables(tables)))


def _as(col: pa.Array | None, kind: pa.DataType, n: int) -> pa.Array:
    if col is None:
        return pa.nulls(n, kind)
    col = one_array(col)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col.cast(kind)


def _text(table: pa.Table, *names: str) -> pa.Array:
    """The first of the columns `names` as text cut to TEXT_CHARS (empty text is unset)."""
    col = first_column(table, names, pa.string())
    col = pc.utf8_slice_codeunits(col, 0, TEXT_CHARS)
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def _address(table: pa.Table, *names: str) -> pa.Array:
    """The first of the columns `names` as canonical addresses (null where it is none)."""
    col = first_column(table, names, pa.string())
    fixed, invalid = addresses.canonical(col)
    return pc.if_else(invalid, pa.scalar(None, pa.string()), fixed)


def _port(table: pa.Table, *names: str) -> pa.Array:
    """The first of the columns `names` as a port (null where it is none: not 0-65535)."""
    for name in names:
        if name in table.column_names:
            col = one_array(table.column(name))
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            if pa.types.is_string(col.type):  # a JSON port as text ("22/tcp" is not one)
                col = pc.if_else(pc.match_substring_regex(col, r"^[0-9]{1,5}$"), col, pa.scalar(None, pa.string()))
            if pa.types.is_floating(col.type):  # a JSON column where one line wrote 0.0: whole numbers are ports
                whole = pc.and_(pc.equal(pc.floor(col), col), pc.less_equal(pc.abs(col), 1e6))
                col = pc.if_else(whole, col, pa.scalar(None, col.type)).cast(pa.int64())
            if not (pa.types.is_integer(col.type) or pa.types.is_string(col.type)):
                return pa.nulls(len(table), pa.uint16())
            wide = col.cast(pa.int64())
            ok = pc.and_(pc.greater_equal(wide, 0), pc.less_equal(wide, 65535))
            return pc.if_else(ok, wide, pa.scalar(None, pa.int64())).cast(pa.uint16())
    return pa.nulls(len(table), pa.uint16())


def _time(table: pa.Table, *names: str) -> pa.Array:
    """The first of the columns `names` as UTC times (nulls when its values are not times)."""
    for name in names:
        if name in table.column_names:
            col = one_array(table.column(name))
            if pa.types.is_timestamp(col.type) and col.type == TIMESTAMP:
                return col
            try:
                return json_time(col)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return pa.nulls(len(table), TIMESTAMP)
    return pa.nulls(len(table), TIMESTAMP)


def _names(table: pa.Table, name: str) -> pa.Array:
    """A list-of-text column, each list cut to NAMES_PER_CERTIFICATE names of TEXT_CHARS."""
    if name not in table.column_names:
        return pa.nulls(len(table), pa.list_(pa.string()))
    col = one_array(table.column(name))
    if not pa.types.is_list(col.type):
        return pa.nulls(len(table), pa.list_(pa.string()))
    col = pc.list_slice(col, 0, NAMES_PER_CERTIFICATE)
    flat = pc.utf8_slice_codeunits(pc.list_flatten(col).cast(pa.string()), 0, TEXT_CHARS)
    return pa.ListArray.from_arrays(_offsets(col), flat, mask=pc.is_null(col))


def _offsets(col: pa.Array) -> pa.Array:
    """The offsets of a list array's values counted from its first list (after a slice)."""
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int32)
    return pa.array(np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]), pa.int32())


def _first_of_list(table: pa.Table, *names: str) -> pa.Array:
    """The first element of the first list column of `names` that the table has (text)."""
    for name in names:
        if name in table.column_names:
            col = one_array(table.column(name))
            if not pa.types.is_list(col.type):
                return pa.nulls(len(table), pa.string())
            # Empty lists made null first: a JSON block whose lists are all empty (TLS 1.3 sends its
            # certificates encrypted: "cert_chain_fps": []) is a list of nulls, where [""] is no value.
            has = pc.fill_null(pc.greater(pc.list_value_length(col), 0), False)
            first = pc.list_element(pc.if_else(has, col, pa.scalar(None, col.type)), 0)
            if not pa.types.is_string(first.type):
                try:
                    first = first.cast(pa.string())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a list of objects: no fingerprint
                    return pa.nulls(len(table), pa.string())
            return pc.if_else(has, pc.utf8_slice_codeunits(first, 0, TEXT_CHARS), pa.scalar(None, pa.string()))
    return pa.nulls(len(table), pa.string())


def _ts(table: pa.Table) -> pa.Array:
    return first_column(table, ("ts",), TIMESTAMP)


#: A version inside software.log's unparsed_version, after the product name.
_VERSION = r"[/_ -]v?(?P<version>[0-9][^\s(;,]*)"


def _software(table: pa.Table) -> dict[str, pa.Array]:
    """software.log: server software (types naming a SERVER) at a port."""
    kind = first_column(table, ("software_type",), pa.string())
    port = _port(table, "host_p")
    unparsed = _text(table, "unparsed_version")
    version = pc.coalesce(_extracted(unparsed, _VERSION), _zeek_version(table))
    ts = _ts(table)
    return {
        "_keep": pc.and_(pc.match_substring(kind, "SERVER"), pc.is_valid(port)),
        "kind": _constant(table, SOFTWARE), "host": _address(table, "host"),
        "port": port, "product": _text(table, "name"), "version": pc.utf8_slice_codeunits(version, 0, TEXT_CHARS),
        "banner": unparsed, "first_seen": ts, "last_seen": ts, "seen": _ones(table),
    }  # fmt: skip


def _zeek_version(table: pa.Table) -> pa.Array:
    """Zeek's own rendering of a software version (software_fmt_version): major.minor.minor2.minor3-addl."""
    parts = [first_column(table, (f"version.{p}",), pa.string()) for p in ("major", "minor", "minor2", "minor3")]
    text = parts[0]
    for part in parts[1:]:
        text = pc.if_else(pc.is_valid(part), pc.binary_join_element_wise(text, part, "."), text)
    addl = _text(table, "version.addl")
    text = pc.if_else(pc.is_valid(addl), pc.binary_join_element_wise(text, addl, "-"), text)
    return pc.if_else(pc.is_valid(parts[0]), text, pa.scalar(None, pa.string()))


def _ssh(table: pa.Table) -> dict[str, pa.Array]:
    """ssh.log: the server's version string ("SSH-2.0-OpenSSH_6.6.1p1 Ubuntu-2ubuntu2") as a product and
    version (see software_parts) at the responder's port."""
    banner = _extracted(_text(table, "server"), r"^SSH-[0-9.]+-(?P<s>.+)$")
    product, version = software_parts(banner)
    ts = _ts(table)
    return {
        "_keep": pc.and_(pc.is_valid(banner), pc.is_valid(_port(table, "id.resp_p"))),
        "kind": _constant(table, SOFTWARE), "host": _address(table, "id.resp_h"), "port": _port(table, "id.resp_p"),
        "product": product, "version": version, "banner": banner, "first_seen": ts, "last_seen": ts,
        "seen": _ones(table),
    }  # fmt: skip


def software_parts(software: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(product, version) of SSH software texts, from their first word
    ("OpenSSH_6.6.1p1 Ubuntu-2" -> OpenSSH, 6.6.1p1; "dropbear_2022.83";
    "Cisco-1.25"): split at the first "_" or "-" before a digit; a word
    without one is all product, no version."""
    word = _extracted(software, r"^(?P<w>[^\s]+)")
    parts = pc.extract_regex(pc.fill_null(word, ""), r"^(?P<product>.+?)[_-]v?(?P<version>[0-9][^\s]*)$")
    product, version = _unset_empty(pc.struct_field(parts, [0])), _unset_empty(pc.struct_field(parts, [1]))
    return pc.coalesce(product, word), version


def _extracted(text: pa.Array, pattern: str) -> pa.Array:
    """The one group of `pattern` in each text (null where it does not match or is empty)."""
    found = pc.extract_regex(pc.fill_null(text, ""), pattern)
    return _unset_empty(pc.if_else(pc.is_valid(text), pc.struct_field(found, [0]), pa.scalar(None, pa.string())))


def _unset_empty(text: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _ssl(table: pa.Table) -> dict[str, pa.Array]:
    """ssl.log: the leaf certificate a server port presented and the SNI its client asked for."""
    fingerprint = _first_of_list(table, "cert_chain_fps", "cert_chain_fuids")
    sni = _text(table, "server_name")
    subject = _text(table, "subject")  # an older Zeek logged the leaf's subject here
    ts = _ts(table)
    return {
        "_keep": pc.and_(pc.or_(pc.or_(pc.is_valid(fingerprint), pc.is_valid(sni)), pc.is_valid(subject)),
                         pc.is_valid(_port(table, "id.resp_p"))),
        "kind": _constant(table, TLS), "host": _address(table, "id.resp_h"),
        "port": _port(table, "id.resp_p"), "name": sni, "fingerprint": fingerprint, "subject": subject,
        "issuer": _text(table, "issuer"), "first_seen": ts, "last_seen": ts, "seen": _ones(table),
    }  # fmt: skip


def _x509(table: pa.Table) -> dict[str, pa.Array]:
    """x509.log: each host certificate's subject, issuer, validity and DNS names, by fingerprint."""
    fingerprint = _text(table, "fingerprint", "id")
    client = pc.fill_null(first_column(table, ("client_cert",), pa.bool_()), False)
    ts = _ts(table)
    return {
        "_keep": pc.and_(pc.is_valid(fingerprint), pc.invert(client)),
        "kind": _constant(table, CERTIFICATE), "fingerprint": fingerprint,
        "subject": _text(table, "certificate.subject"), "issuer": _text(table, "certificate.issuer"),
        "valid_from": _time(table, "certificate.not_valid_before"),
        "valid_until": _time(table, "certificate.not_valid_after"),
        "names": _names(table, "san.dns"), "first_seen": ts, "last_seen": ts, "seen": _ones(table),
    }  # fmt: skip


def whole_micros(seconds: pa.Array) -> pa.Array:
    """Durations in seconds (bounded by the caller) as whole microseconds: a
    fraction of one (a hostile 0.0078125, or 1.1e-05 * 1e6 in floating point)
    rounds, where a cast refused to truncate it and stopped the ingest."""
    return pc.round(pc.multiply(seconds, 1e6)).cast(pa.int64())


def _dhcp(table: pa.Table) -> dict[str, pa.Array]:
    """dhcp.log: a leased address, the name its client claimed and its MAC, valid for the lease time."""
    host = _address(table, "assigned_addr", "assigned_ip")
    name = pc.coalesce(_text(table, "host_name", "hostname"), _text(table, "client_fqdn"))
    ts = _ts(table)
    lease = first_column(table, ("lease_time",), pa.float64())
    lease = pc.if_else(pc.and_(pc.greater_equal(lease, 0), pc.less_equal(lease, 366 * 86400.0)), lease, 0.0)
    until = pc.add(ts.cast(pa.int64()), whole_micros(pc.fill_null(lease, 0.0))).cast(TIMESTAMP)
    return {
        "_keep": pc.and_(pc.is_valid(host), pc.is_valid(name)),
        "kind": _constant(table, LEASE), "host": host, "name": name,
        "mac": _text(table, "mac"), "first_seen": ts, "last_seen": until, "seen": _ones(table),
    }  # fmt: skip


def _dns(table: pa.Table) -> dict[str, pa.Array]:
    """dns.log: each address an answer gave for the query's name, valid for the answer's TTL
    (rows of the answers, not of the log: the caller's `_keep` and columns are per answer)."""
    if "answers" not in table.column_names or not pa.types.is_list(one_array(table.column("answers")).type):
        return {"_keep": pa.array(np.zeros(len(table), dtype=bool))}
    answers = one_array(table.column("answers"))
    parents = pc.list_parent_indices(answers)
    values = pc.list_flatten(answers).cast(pa.string())
    fixed, invalid = addresses.canonical(values)  # a name (a CNAME's target) is no address
    ttls = _flat_ttls(table, answers)
    ts = pc.take(_ts(table), parents)
    until = pc.add(ts.cast(pa.int64()), whole_micros(ttls)).cast(TIMESTAMP)
    name = pc.take(_text(table, "query"), parents)
    return {
        "_keep": pc.and_(pc.invert(invalid), pc.is_valid(name)), "_rows": parents,
        "kind": _constant_n(len(values), DNS), "host": fixed, "name": name, "first_seen": ts, "last_seen": until,
        "seen": pa.array(np.ones(len(values), dtype=np.uint64)),
    }  # fmt: skip


def _flat_ttls(table: pa.Table, answers: pa.Array) -> pa.Array:
    """Each answer's TTL in seconds: 0 where its line has no TTLs, not one per answer, or a silly one."""
    answer_counts = pc.fill_null(pc.list_value_length(answers), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    total = int(answer_counts.sum())
    col = one_array(table.column("TTLs")) if "TTLs" in table.column_names else None
    if col is None or not pa.types.is_list(col.type):
        return pa.array(np.zeros(total))
    try:
        flat = pc.list_flatten(col).cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array(np.zeros(total))
    values = pc.fill_null(flat, 0.0).to_numpy(zero_copy_only=False)
    ttl_counts = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    parents = np.repeat(np.arange(len(answer_counts)), answer_counts)
    answer_starts = np.concatenate([[0], np.cumsum(answer_counts)[:-1]]) if len(answer_counts) else answer_counts
    ttl_starts = np.concatenate([[0], np.cumsum(ttl_counts)[:-1]]) if len(ttl_counts) else ttl_counts
    within = np.arange(total) - answer_starts[parents]
    matched = (answer_counts == ttl_counts)[parents]
    ttls = np.where(matched, values[np.where(matched, ttl_starts[parents] + within, 0)] if len(values) else 0.0, 0.0)
    return pa.array(np.where((ttls >= 0) & (ttls <= 30 * 86400.0), ttls, 0.0))


def capped_dns(table: pa.Table) -> pa.Table:
    """Reduced IDENTITY_SCHEMA rows with at most DNS_NAMES_PER_ADDRESS `dns`
    rows per address (sensor and host), the most seen kept (ties: the name)."""
    is_dns = pc.equal(table.column("kind"), DNS)
    dns = table.filter(is_dns)
    if len(dns) <= DNS_NAMES_PER_ADDRESS:
        return table
    dns = dns.sort_by([("sensor", "ascending"), ("host", "ascending"), ("seen", "descending"), ("name", "ascending")])
    keys = pc.binary_join_element_wise(pc.fill_null(dns.column("sensor"), ""), dns.column("host"), "\t")
    values = keys.to_numpy(zero_copy_only=False)
    starts = np.r_[True, values[1:] != values[:-1]] if len(values) else np.array([], dtype=bool)
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))
    rank = np.arange(len(values)) - group_start
    return pa.concat_tables([table.filter(pc.invert(is_dns)), dns.filter(pa.array(rank < DNS_NAMES_PER_ADDRESS))])


def _ones(table: pa.Table) -> pa.Array:
    return pa.array(np.ones(len(table), dtype=np.uint64))


_READERS = {"software": _software, "ssh": _ssh, "ssl": _ssl, "x509": _x509, "dhcp": _dhcp, "dns": _dns}


def _constant(table: pa.Table, value: str) -> pa.Array:
    return _constant_n(len(table), value)


def _constant_n(n: int, value: str) -> pa.Array:
    return pa.array(np.full(n, value, dtype=object), pa.string())
