"""The normalized connection record: one place for every schema fact.

Everything that says how a Zeek column becomes an Arrow column lives here:
the Zeek-type -> Arrow-type map, the column rename map, the fixed column
order of the normalized record and the outcome vocabulary. Readers
(`zeek_ascii`, `zeek_json`) and the normalizer import these; `inventory`
may import them too (and nothing else of `ingest`).
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
DICT_STRING = pa.dictionary(pa.int32(), pa.string())

#: Outcome values (see DESIGN.md "Outcome of a TCP handshake").
OPEN = "open"
REJECTED = "rejected"
UNANSWERED = "unanswered"
MIDSTREAM = "midstream"
ANSWERED = "answered"
#: TCP: the responder answered (data, or an ACK Zeek calls established) but
#: the sensor missed its SYN-ACK: a server, marked (see INFERRED_STATE).
INFERRED = "inferred"
#: TCP: the responder sent something after the SYN, but neither a SYN-ACK,
#: data, an established ACK nor a reset: not a server, not unanswered.
AMBIGUOUS = "ambiguous"
#: Transports without ports (ICMP, unknown_transport): never a server.
NO_PORTS = "none"
OUTCOMES = (OPEN, REJECTED, UNANSWERED, MIDSTREAM, ANSWERED, NO_PORTS, INFERRED, AMBIGUOUS)

#: Zeek's dotted id fields, and the names sites give them with
#: `Log::default_field_name_map`, mapped to the normalized names.
RENAMES: dict[str, str] = {
    "id.orig_h": "orig_h",
    "id.orig_p": "orig_p",
    "id.resp_h": "resp_h",
    "id.resp_p": "resp_p",
    "id_orig_h": "orig_h",
    "id_orig_p": "orig_p",
    "id_resp_h": "resp_h",
    "id_resp_p": "resp_p",
    "src_ip": "orig_h",
    "src_port": "orig_p",
    "dst_ip": "resp_h",
    "dst_port": "resp_p",
}

#: Columns without which a log is not a conn log.
REQUIRED = ("ts", "uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto")

#: The fields of a stock Zeek 8 conn.log, in the order Zeek writes them.
ZEEK_CONN_FIELDS: tuple[tuple[str, str], ...] = (
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"),
    ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"),
    ("conn_state", "string"), ("local_orig", "bool"), ("local_resp", "bool"),
    ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"), ("ip_proto", "count"),
)  # fmt: skip

#: The fields synack's Zeek package (zeek_scripts/) adds to conn.log.
SYNACK_CONN_FIELDS: tuple[tuple[str, str], ...] = (
    ("handshake", "string"), ("synack_ts", "time"), ("server_reply", "string"), ("sensor", "string"),
)  # fmt: skip

#: Zeek types of known conn.log fields (stock, common policy scripts and
#: extensions, synack's own), used where the log does not say: JSON logs
#: carry no #types header.
CONN_FIELD_TYPES: dict[str, str] = {
    **dict(ZEEK_CONN_FIELDS),
    "community_id": "string",
    "orig_l2_addr": "string",
    "resp_l2_addr": "string",
    "vlan": "int",
    "inner_vlan": "int",
    "failed_service": "set[string]",
    "_write_ts": "time",
    "_system_name": "string",
    "_stream": "string",
    **dict(SYNACK_CONN_FIELDS),
}

#: Columns whose values repeat a lot: kept dictionary-encoded end to end.
DICTIONARY_COLUMNS = frozenset(
    {
        "proto",
        "service",
        "conn_state",
        "history",
        "sensor",
        "handshake",
        "_system_name",
        "_stream",
        "orig_l2_addr",
        "resp_l2_addr",
    }
)

#: Columns holding raw bytes from the network rather than text.
BINARY_COLUMNS = frozenset({"server_reply"})

_SCALARS: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "count": pa.uint64(),
    "counter": pa.uint64(),
    "double": pa.float64(),
    "time": TIMESTAMP,
    "interval": pa.float64(),
    "port": pa.uint16(),
    "addr": DICT_STRING,
}
#: The Zeek types that have a typed (non-text) column.
SCALAR_TYPES = frozenset(_SCALARS)


def arrow_type(zeek_type: str, column: str = "") -> pa.DataType:
    """Return the normalized Arrow type of a column of Zeek type `zeek_type`.

    Sets and vectors become lists of their element type; string-like types
    (string, enum, subnet, pattern, func, ...) become strings, dictionary
    encoded for the columns in DICTIONARY_COLUMNS, binary for BINARY_COLUMNS.
    """
    for prefix in ("set[", "vector[", "table["):
        if zeek_type.startswith(prefix) and zeek_type.endswith("]"):
            inner = zeek_type[len(prefix) : -1]
            return pa.list_(arrow_type(inner) if inner != "addr" else pa.string())
    if column in BINARY_COLUMNS:
        return pa.binary()
    if zeek_type in _SCALARS:
        return _SCALARS[zeek_type]
    if column in DICTIONARY_COLUMNS or zeek_type == "enum":
        return DICT_STRING
    return pa.string()


#: The store's partition keys (conn/date=YYYY-MM-DD/): a log column of that
#: name is renamed (log_date), or Hive readers of conn/ (pandas, DuckDB)
#: would fail on the whole store for one such log.
PARTITION_KEYS = ("date",)


def normalized_name(zeek_name: str) -> str:
    """Return the normalized column name of a Zeek field name."""
    name = RENAMES.get(zeek_name, zeek_name.replace(".", "_"))
    return f"log_{name}" if name in PARTITION_KEYS else name


#: The fixed leading columns of a normalized record, in order (DESIGN.md).
#: Any other column of the log follows them, in log order.
CORE_SCHEMA = pa.schema(
    [
        ("ts", TIMESTAMP),
        ("sensor", DICT_STRING),
        ("uid", pa.string()),
        ("orig_h", DICT_STRING),
        ("orig_p", pa.uint16()),
        ("resp_h", DICT_STRING),
        ("resp_p", pa.uint16()),
        ("proto", DICT_STRING),
        ("service", DICT_STRING),
        ("conn_state", DICT_STRING),
        ("history", DICT_STRING),
        ("duration", pa.float64()),
        ("orig_bytes", pa.uint64()),
        ("resp_bytes", pa.uint64()),
        ("orig_pkts", pa.uint64()),
        ("resp_pkts", pa.uint64()),
        ("local_orig", pa.bool_()),
        ("local_resp", pa.bool_()),
        ("server_reply", pa.binary()),
        ("outcome", DICT_STRING),
        ("server_h", DICT_STRING),
        ("server_p", pa.uint16()),
        ("client_h", DICT_STRING),
    ]
)

#: Columns the inventories read; every store file has them with these types.
INVENTORY_COLUMNS = (
    "ts",
    "sensor",
    "uid",
    "orig_h",
    "resp_h",
    "proto",
    "service",
    "server_reply",
    "outcome",
    "server_h",
    "server_p",
    "client_h",
)
