"""Reader for Suricata's EVE JSON: `flow` events as normalized connection records.

An eve.json interleaves many event types (alert, dns, tls, stats, ...);
only `"event_type":"flow"` lines are parsed, the others are dropped by one
vectorized substring test over the block's lines, without JSON parsing.
Field mapping (DESIGN.md): ts from `flow.start` (the top-level `timestamp`
is the logging time), uid from `flow_id`, IPv6 canonical (Suricata prints
it expanded), proto lower-case, service from `app_proto` unless "failed",
packets and bytes from the flow counters, sensor from `host`. The outcome
comes from the TCP flags (see handshake.derive_outcome_from_flags).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from synack.ingest import addresses
from synack.ingest.line_parsing import ParsedRows, RowRejects, parse_lines
from synack.ingest.normalize import valid_utf8
from synack.ingest.schema import DICT_STRING, TIMESTAMP
from synack.ingest.value_limits import ValueLimits, reject_malformed, reject_unbelievable_times

_FLOW_EVENT = r'"event_type"\s*:\s*"flow"'
_NETFLOW_EVENT = r'"event_type"\s*:\s*"netflow"'
_CEE_PREFIX = b"@cee: "

_FLOW = pa.struct(
    [
        ("pkts_toserver", pa.uint64()), ("pkts_toclient", pa.uint64()),
        ("bytes_toserver", pa.uint64()), ("bytes_toclient", pa.uint64()),
        ("start", pa.string()), ("end", pa.string()), ("state", pa.string()), ("reason", pa.string()),
    ]
)  # fmt: skip
_TCP = pa.struct([("tcp_flags", pa.string()), ("tcp_flags_ts", pa.string()), ("tcp_flags_tc", pa.string()),
                  ("state", pa.string())])  # fmt: skip
_SCHEMA = pa.schema(
    [
        ("flow_id", pa.uint64()), ("event_type", pa.string()), ("src_ip", pa.string()), ("src_port", pa.uint16()),
        ("dest_ip", pa.string()), ("dest_port", pa.uint16()), ("proto", pa.string()), ("app_proto", pa.string()),
        ("host", pa.string()), ("in_iface", pa.string()), ("flow", _FLOW), ("tcp", _TCP),
    ]
)  # fmt: skip
_PARSE = pajson.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False)
_READ = pajson.ReadOptions(block_size=4 << 20)


def flow_lines(block: bytes | bytearray | memoryview, pattern: str = _FLOW_EVENT) -> tuple[bytes, np.ndarray]:
    """(the flow-event lines of `block`, joined, each ending in a newline;
    the 0-based line index in `block` of each kept line).

    `block` holds complete lines. A syslog `@cee: ` prefix is removed.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if len(ends) == 0:
        return b"", np.zeros(0, dtype=np.int64)
    offsets = np.concatenate(([0], ends + 1)).astype(np.int64)  # each line with its newline
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    )
    keep = np.asarray(pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False), dtype=bool)
    index = np.flatnonzero(keep)
    if len(index) == 0:
        return b"", index
    kept = pc.filter(lines, pa.array(keep))  # contiguous: its data buffer is the kept lines, joined
    kept_offsets = np.frombuffer(kept.buffers()[1], dtype=np.int64)[kept.offset : kept.offset + len(kept) + 1]
    joined = kept.buffers()[2].to_pybytes()[int(kept_offsets[0]) : int(kept_offsets[-1])]
    if joined.startswith(_CEE_PREFIX) or b"\n" + _CEE_PREFIX in joined:
        joined = re.sub(rb"(?m)^@cee: ", b"", joined)
    return joined, index


def _reason(err: Exception) -> str:
    msg = str(err).split("\n")[0]
    return re.sub(r"^JSON parse error: ", "invalid JSON: ", msg)[:300]


def read_rows(block: bytes | bytearray | memoryview, first_line: int, limits: ValueLimits | None = None) -> ParsedRows:
    """Parse the flow events among complete EVE lines `block`.

    Returns tables in the reader's vocabulary (Zeek-like names: ts, uid,
    id.orig_h, ..., plus Suricata's flow and TCP fields) for the normalizer;
    bad flow lines come back as Quarantined with their line numbers in
    `block` (numbered from `first_line`). Other events are skipped.
    """
    limits = limits or ValueLimits()
    joined, index = flow_lines(block)
    parse = _parse_flows
    if not joined:
        # No flow events: a netflow-only output, one event per direction.
        joined, index = flow_lines(block, _NETFLOW_EVENT)
        parse = _parse_netflows
        if not joined:
            return ParsedRows([], [])
    parsed = parse_lines(joined, 1, lambda buf: parse(buf, limits), _reason)
    for i, q in enumerate(parsed.quarantined):
        parsed.quarantined[i] = type(q)(first_line + int(index[q.line - 1]), q.reason, q.text)
    return parsed


def _parse_flows(buf: pa.Buffer, limits: ValueLimits) -> tuple[pa.Table, np.ndarray | None]:
    return _to_conn(pajson.read_json(pa.BufferReader(buf), _READ, _PARSE), limits)


_NETFLOW = pa.struct([("pkts", pa.uint64()), ("bytes", pa.uint64()), ("start", pa.string()), ("end", pa.string())])
_NETFLOW_PARSE = pajson.ParseOptions(
    explicit_schema=pa.schema([*[f for f in _SCHEMA if f.name not in ("flow",)], ("netflow", _NETFLOW)]),
    unexpected_field_behavior="ignore",
    newlines_in_values=False,
)


def _parse_netflows(buf: pa.Buffer, limits: ValueLimits) -> tuple[pa.Table, np.ndarray | None]:
    """Pair netflow events by flow_id into flow records.

    Suricata writes a flow's two netflow events back to back: the first is
    the client's direction (src = client), the second the server's. A flow
    with one event is one-sided. (A pair split across two read blocks is
    taken as two one-sided flows: no server is invented, one may be missed.)
    """
    t = pajson.read_json(pa.BufferReader(buf), _READ, _NETFLOW_PARSE).combine_chunks()
    ids = t.column("flow_id").to_numpy(zero_copy_only=False)
    _, first = np.unique(ids, return_index=True)
    is_first = np.zeros(len(t), dtype=bool)
    is_first[first] = True
    firsts = t.filter(pa.array(is_first)).combine_chunks()
    seconds = t.filter(pa.array(~is_first)).combine_chunks()
    net = firsts.column("netflow").combine_chunks()
    back = seconds.column("netflow").combine_chunks()
    position = pc.index_in(firsts.column("flow_id").combine_chunks(), seconds.column("flow_id").combine_chunks())
    pkts_back = pc.fill_null(pc.take(pc.struct_field(back, "pkts"), position), 0)
    bytes_back = pc.fill_null(pc.take(pc.struct_field(back, "bytes"), position), 0)
    flags_back = pc.take(pc.struct_field(seconds.column("tcp").combine_chunks(), "tcp_flags"), position)
    flags_there = pc.struct_field(firsts.column("tcp").combine_chunks(), "tcp_flags")
    flow = pa.StructArray.from_arrays(
        [pc.struct_field(net, "pkts"), pkts_back, pc.struct_field(net, "bytes"), bytes_back,
         pc.struct_field(net, "start"), pc.struct_field(net, "end"), pa.nulls(len(firsts), pa.string()),
         pa.nulls(len(firsts), pa.string())],
        fields=list(_FLOW),
    )  # fmt: skip
    is_tcp = pc.equal(pc.utf8_lower(firsts.column("proto").combine_chunks()), "tcp")
    tcp = pa.StructArray.from_arrays(
        [flags_there, flags_there, pc.if_else(is_tcp, pc.fill_null(flags_back, "00"), flags_back),
         pa.nulls(len(firsts), pa.string())],
        fields=list(_TCP),
    )  # fmt: skip
    paired = firsts.drop_columns(["netflow", "tcp"]).append_column("flow", flow).append_column("tcp", tcp)
    table, reasons = _to_conn(paired, limits)
    if reasons is not None:
        # Rows are flows, not lines: let the caller narrow the block down to the bad line.
        raise pa.ArrowInvalid(next(r for r in reasons if r))
    return table, None


def _to_conn(t: pa.Table, limits: ValueLimits) -> tuple[pa.Table, np.ndarray | None]:
    rejects = RowRejects(len(t))
    flow = t.column("flow").combine_chunks()
    tcp = t.column("tcp").combine_chunks()
    start = pc.struct_field(flow, "start")
    rejects.reject(pc.is_null(start), "flow.start: unset")
    ts = pc.cast(start, TIMESTAMP)
    reject_unbelievable_times(ts, "flow.start", limits, rejects)
    end = pc.cast(pc.struct_field(flow, "end"), TIMESTAMP)
    duration = pc.divide(pc.subtract(end.cast(pa.int64()), ts.cast(pa.int64())).cast(pa.float64()), 1e6)
    columns: dict[str, pa.Array] = {"ts": ts, "uid": pc.cast(t.column("flow_id"), pa.string())}
    for name, source in (("id.orig_h", "src_ip"), ("id.resp_h", "dest_ip")):
        encoded = t.column(source).combine_chunks().dictionary_encode()
        values, invalid = addresses.canonical(encoded.dictionary)
        rejects.reject(pc.take(invalid, encoded.indices), f"{source}: invalid address")
        columns[name] = pa.DictionaryArray.from_arrays(encoded.indices, values)
    columns["id.orig_p"] = pc.fill_null(t.column("src_port"), 0)
    columns["id.resp_p"] = pc.fill_null(t.column("dest_port"), 0)
    columns["proto"] = pc.utf8_lower(t.column("proto")).dictionary_encode()
    app = t.column("app_proto")
    columns["service"] = pc.if_else(pc.equal(app, "failed"), pa.scalar(None, pa.string()), app).cast(DICT_STRING)
    columns["duration"] = duration
    columns["orig_bytes"] = pc.struct_field(flow, "bytes_toserver")
    columns["resp_bytes"] = pc.struct_field(flow, "bytes_toclient")
    columns["orig_pkts"] = pc.struct_field(flow, "pkts_toserver")
    columns["resp_pkts"] = pc.struct_field(flow, "pkts_toclient")
    columns["sensor"] = t.column("host").combine_chunks().dictionary_encode()
    columns["flow_state"] = pc.struct_field(flow, "state").dictionary_encode()
    columns["flow_reason"] = pc.struct_field(flow, "reason").dictionary_encode()
    columns["tcp_flags_ts"] = pc.struct_field(tcp, "tcp_flags_ts").dictionary_encode()
    columns["tcp_flags_tc"] = pc.struct_field(tcp, "tcp_flags_tc").dictionary_encode()
    columns["tcp_state"] = pc.struct_field(tcp, "state").dictionary_encode()
    columns["in_iface"] = t.column("in_iface").combine_chunks().dictionary_encode()
    table = pa.table(
        {k: valid_utf8(v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v) for k, v in columns.items()}
    )
    reject_malformed(table, rejects)
    return table, rejects.reasons
