"""Suricata's `tls`, `ssh`, `dhcp` and `dns` EVE events as identity facts (ingest.server_identity).

An eve.json is read twice, as two sources with offsets of their own: its
flows (ingest.suricata_eve) and its identity events (this module), so an
eve.json an older synack read to its end for flows has its identity
events read by the next ingest or `watch` pass, once. Only the lines whose
`event_type` is tls, ssh, dhcp or dns are parsed (one vectorized substring test
per block, as for flows):

* tls: the server (`dest_ip`:`dest_port`) presented the certificate
  `tls.fingerprint` (SHA-1, as Suricata prints it) for the SNI `tls.sni`;
  the certificate's subject, issuer and validity (Suricata logs no SANs);
* ssh: the server's `ssh.server.software_version` as product and version;
* dhcp: `dhcp.assigned_ip` leased to the client that claimed
  `dhcp.hostname` (extended DHCP logging), for `dhcp.lease_time`;
* dns: each A/AAAA answer: the address had the queried name for the TTL.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from synack.ingest import addresses
from synack.ingest.line_parsing import ParsedRows, RowRejects, parse_lines
from synack.ingest.normalize import DEFAULT_SENSOR, valid_utf8
from synack.ingest.schema import TIMESTAMP
from synack.ingest.server_identity import (
    CERTIFICATE,
    DNS,
    IDENTITY_SCHEMA,
    LEASE,
    SOFTWARE,
    TEXT_CHARS,
    TLS,
    merged_facts,
    software_parts,
    whole_micros,
)
from synack.ingest.suricata_eve import flow_lines
from synack.ingest.value_limits import ValueLimits, reject_unbelievable_times

_IDENTITY_EVENT = r'"event_type"\s*:\s*"(?:tls|ssh|dhcp|dns)"'
_TLS = pa.struct([("subject", pa.string()), ("issuerdn", pa.string()), ("fingerprint", pa.string()),
                  ("sni", pa.string()), ("notbefore", pa.string()), ("notafter", pa.string())])  # fmt: skip
_SSH = pa.struct([("server", pa.struct([("software_version", pa.string()), ("proto_version", pa.string())]))])
_DHCP = pa.struct([("type", pa.string()), ("assigned_ip", pa.string()), ("hostname", pa.string()),
                   ("client_mac", pa.string()), ("lease_time", pa.float64())])  # fmt: skip
_ANSWER = pa.struct([("rrname", pa.string()), ("rrtype", pa.string()), ("ttl", pa.float64()), ("rdata", pa.string())])
_DNS = pa.struct([("type", pa.string()), ("rrname", pa.string()), ("rrtype", pa.string()), ("ttl", pa.float64()),
                  ("rdata", pa.string()), ("answers", pa.list_(_ANSWER)),
                  ("queries", pa.list_(pa.struct([("rrname", pa.string())])))])  # fmt: skip
_SCHEMA = pa.schema(
    [
        ("timestamp", pa.string()), ("event_type", pa.string()), ("src_ip", pa.string()),
        ("dest_ip", pa.string()), ("dest_port", pa.uint16()), ("host", pa.string()),
        ("tls", _TLS), ("ssh", _SSH), ("dhcp", _DHCP), ("dns", _DNS),
    ]
)  # fmt: skip
_PARSE = pajson.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False)
_READ = pajson.ReadOptions(block_size=4 << 20)


def read_identity(block: bytes | bytearray | memoryview, first_line: int, sensor: str | None = None,
                  limits: ValueLimits | None = None) -> ParsedRows:  # fmt: skip
    """The identity facts (IDENTITY_SCHEMA, reduced) of the tls, ssh and dhcp
    events among complete EVE lines `block`; bad event lines come back as
    Quarantined, numbered from `first_line`. `sensor` names the sensor of
    events without a `host` (DEFAULT_SENSOR when None)."""
    checked = limits or ValueLimits()
    joined, index = flow_lines(block, _IDENTITY_EVENT)
    if not joined:
        return ParsedRows([], [])
    fallback = sensor or DEFAULT_SENSOR
    facts: list[pa.Table] = []

    def parse(buf: pa.Buffer) -> tuple[pa.Table, np.ndarray | None]:
        """parse_lines' parser: one row per line (with its reason) for the quarantine; the facts apart."""
        found, reasons, lines = _facts(buf, checked, fallback)
        facts.append(found)
        return pa.table({"line": pa.array(np.arange(lines))}), reasons

    parsed = parse_lines(joined, 1, parse, _reason)
    quarantined = [type(q)(first_line + int(index[q.line - 1]), q.reason, q.text) for q in parsed.quarantined]
    return ParsedRows([f for f in facts if len(f)], quarantined)


def _reason(err: Exception) -> str:
    return str(err).split("\n")[0].replace("JSON parse error: ", "invalid JSON: ")[:300]


def _facts(buf: pa.Buffer, limits: ValueLimits, sensor: str) -> tuple[pa.Table, np.ndarray | None, int]:
    """One parsed block of identity events: (IDENTITY_SCHEMA rows, one per
    event and one per certificate, of the lines not set aside; each line's
    reason, None when none is; how many lines)."""
    t = pajson.read_json(pa.BufferReader(buf), _READ, _PARSE).combine_chunks()
    lines = len(t)
    rejects = RowRejects(lines)
    ts = pc.cast(t.column("timestamp"), TIMESTAMP)
    rejects.reject(pc.is_null(ts), "timestamp: unset")
    reject_unbelievable_times(ts, "timestamp", limits, rejects)
    if rejects.reasons is not None:  # a line set aside gives no fact: its rows go before the facts are made
        good = pa.array(rejects.reasons == "")
        t, ts = t.filter(good), ts.filter(good)
    events = pc.fill_null(t.column("event_type"), "")
    server, invalid = addresses.canonical(t.column("dest_ip").combine_chunks())
    server = pc.if_else(invalid, pa.scalar(None, pa.string()), server)
    named = pc.fill_null(pc.if_else(pc.equal(t.column("host"), ""), pa.scalar(None, pa.string()), t.column("host")),
                         sensor)  # fmt: skip
    base = {"sensor": named, "host": server, "port": t.column("dest_port"), "first_seen": ts, "last_seen": ts}
    tls, ssh, dhcp, dns = (t.column(n).combine_chunks() for n in ("tls", "ssh", "dhcp", "dns"))
    parts = [
        _rows(base, pc.equal(events, "tls"), kind=TLS, name=_field(tls, "sni"), fingerprint=_field(tls, "fingerprint")),
        _rows(base, pc.and_(pc.equal(events, "tls"), pc.is_valid(_field(tls, "fingerprint"))), kind=CERTIFICATE,
              host=None, port=None, fingerprint=_field(tls, "fingerprint"), subject=_field(tls, "subject"),
              issuer=_field(tls, "issuerdn"), valid_from=_utc(_field(tls, "notbefore")),
              valid_until=_utc(_field(tls, "notafter"))),
        _ssh_rows(base, events, ssh),
        _dhcp_rows(base, events, dhcp, ts),
        *_dns_rows(base, events, dns, ts),
    ]  # fmt: skip
    return _valid_text(pa.concat_tables(parts)), rejects.reasons, lines


def _valid_text(table: pa.Table) -> pa.Table:
    """`table` with its text made valid UTF-8 (pyarrow's JSON reader passes raw bytes through)."""
    return pa.table([valid_utf8(c.combine_chunks()) for c in table.columns], schema=table.schema)


def _field(struct: pa.Array, name: str) -> pa.Array:
    """A text field of a struct column, cut to TEXT_CHARS, empty text unset."""
    value = pc.utf8_slice_codeunits(pc.struct_field(struct, name), 0, TEXT_CHARS)
    return pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value)


def _utc(text: pa.Array) -> pa.Array:
    """Suricata's certificate times (ISO 8601 without a zone: UTC) as times; null where they are not."""
    try:
        return pc.cast(text, pa.timestamp("us")).cast(pa.int64()).cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(text), TIMESTAMP)


def _rows(base: dict[str, pa.Array], keep: pa.Array, **columns: pa.Array | str | None) -> pa.Table:
    """IDENTITY_SCHEMA rows of `base` and `columns` (a str is a constant, None unset) where `keep`."""
    n = len(next(iter(base.values())))
    merged: dict[str, pa.Array | str | None] = {**base, **columns}
    out = {}
    for f in IDENTITY_SCHEMA:
        value = merged.get(f.name, None)
        if f.name == "seen":
            out[f.name] = pa.array(np.ones(n, dtype=np.uint64))
        elif value is None:
            out[f.name] = pa.nulls(n, f.type)
        elif isinstance(value, str):
            out[f.name] = pa.array(np.full(n, value, dtype=object), f.type)
        else:
            out[f.name] = value.cast(f.type)
    return pa.table(out, schema=IDENTITY_SCHEMA).filter(pc.fill_null(keep, False))


def _ssh_rows(base: dict[str, pa.Array], events: pa.Array, ssh: pa.Array) -> pa.Table:
    software = _field(pc.struct_field(ssh, "server"), "software_version")
    product, version = software_parts(software)
    keep = pc.and_(pc.equal(events, "ssh"), pc.is_valid(software))
    return _rows(base, keep, kind=SOFTWARE, product=product, version=version, banner=software)


def _dhcp_rows(base: dict[str, pa.Array], events: pa.Array, dhcp: pa.Array, ts: pa.Array) -> pa.Table:
    leased, invalid = addresses.canonical(pc.struct_field(dhcp, "assigned_ip"))
    leased = pc.if_else(pc.or_(invalid, pc.equal(leased, "0.0.0.0")), pa.scalar(None, pa.string()), leased)
    lease = pc.struct_field(dhcp, "lease_time")
    lease = pc.fill_null(pc.if_else(pc.and_(pc.greater_equal(lease, 0), pc.less_equal(lease, 366 * 86400.0)), lease,
                                    0.0), 0.0)  # fmt: skip
    until = pc.add(ts.cast(pa.int64()), whole_micros(lease)).cast(TIMESTAMP)
    name = _field(dhcp, "hostname")
    keep = pc.and_(pc.equal(events, "dhcp"), pc.and_(pc.is_valid(leased), pc.is_valid(name)))
    return _rows(base, keep, kind=LEASE, host=leased, port=None, name=name, mac=_field(dhcp, "client_mac"),
                 last_seen=until)  # fmt: skip


def _dns_rows(base: dict[str, pa.Array], events: pa.Array, dns: pa.Array, ts: pa.Array) -> list[pa.Table]:
    """The A and AAAA answers of dns events: the address had the queried name for the answer's TTL.
    EVE's dns v2 and v3 (an `answers` list; v3 names the query in `queries`) and v1 (one answer per event)."""
    answers = pc.struct_field(dns, "answers")
    parents = pc.list_parent_indices(answers)
    flat = pc.list_flatten(answers)
    queried = pc.coalesce(_first_query(pc.struct_field(dns, "queries")), pc.struct_field(dns, "rrname"))
    listed = {k: pc.take(v, parents) for k, v in base.items()}
    listed_events = pc.take(events, parents)
    return [
        _answer_rows(listed, listed_events, pc.take(queried, parents), pc.struct_field(flat, "rrtype"),
                     pc.struct_field(flat, "rdata"), pc.struct_field(flat, "ttl"), pc.take(ts, parents)),
        _answer_rows(base, events, pc.struct_field(dns, "rrname"), pc.struct_field(dns, "rrtype"),
                     pc.struct_field(dns, "rdata"), pc.struct_field(dns, "ttl"), ts),
    ]  # fmt: skip


def _first_query(queries: pa.Array) -> pa.Array:
    """The name of each event's first query (null where its list is null or empty)."""
    first = pc.list_slice(queries, 0, 1)
    names = pc.struct_field(pc.list_flatten(first), "rrname")
    at = np.full(len(queries), -1, dtype=np.int64)
    at[pc.list_parent_indices(first).to_numpy(zero_copy_only=False)] = np.arange(len(names))
    return pc.take(names, pa.array(at, mask=at < 0))


def _answer_rows(base: dict[str, pa.Array], events: pa.Array, name: pa.Array, rrtype: pa.Array, rdata: pa.Array,
                 ttl: pa.Array, ts: pa.Array) -> pa.Table:  # fmt: skip
    address, invalid = addresses.canonical(rdata)
    ttl = pc.fill_null(pc.if_else(pc.and_(pc.greater_equal(ttl, 0), pc.less_equal(ttl, 30 * 86400.0)), ttl, 0.0), 0.0)
    until = pc.add(ts.cast(pa.int64()), whole_micros(ttl)).cast(TIMESTAMP)
    keep = pc.and_(pc.and_(pc.equal(events, "dns"), pc.is_in(rrtype, pa.array(["A", "AAAA"]))),
                   pc.and_(pc.invert(invalid), pc.is_valid(name)))  # fmt: skip
    return _rows(base, keep, kind=DNS, host=address, port=None,
                 name=pc.utf8_slice_codeunits(name, 0, TEXT_CHARS), last_seen=until)  # fmt: skip


def identity_table(parsed: ParsedRows) -> pa.Table | None:
    """The reduced facts of a parsed block (None: none)."""
    return merged_facts(parsed.tables) if parsed.tables else None
