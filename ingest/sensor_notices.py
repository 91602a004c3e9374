"""The sensor's own notices of new server ports (the package's notice.zeek), as store rows.

A notice.log is a source of its own kind: its `SynAck::*` notices are kept
(other notices are not synack's business), one row per notice, in
`notices/<source-id>-<chunk>.parquet` beside the records. The server is
the notice's `dst`:`p` (notice.zeek sets them to the server, whichever
side of the connection it was), the client its `src`.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.arrays import first_column
from synack.ingest.errors import NotAZeekLog
from synack.ingest.normalize import DEFAULT_SENSOR
from synack.ingest.schema import TIMESTAMP

NOTICES_DIR = "notices"
#: The notes kept: those notice.zeek raises.
NOTE_PREFIX = "SynAck::"

NOTICE_SCHEMA = pa.schema(
    [
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("sensor", pa.string()),
        pa.field("note", pa.string()),
        pa.field("server_h", pa.string()),
        pa.field("proto", pa.string()),
        pa.field("server_p", pa.uint16()),
        pa.field("client_h", pa.string()),
        pa.field("uid", pa.string()),
        pa.field("msg", pa.string()),
    ]
)

#: Zeek notice.log fields a notice row is made of.
REQUIRED = ("ts", "note")


def normalize_notices(table: pa.Table, sensor: str | None = None) -> pa.Table:
    """The SynAck notices of a notice.log reader table (Zeek field names) as NOTICE_SCHEMA rows.

    `sensor` names the sensor of notices whose log has no `sensor` field
    (DEFAULT_SENSOR when None). Raises NotAZeekLog when `ts` or `note` is missing.
    """
    missing = [n for n in REQUIRED if n not in table.column_names]
    if missing:
        raise NotAZeekLog(f"not a notice log: no {', '.join(missing)} column")
    note = first_column(table, ("note",), pa.string())
    timed = pc.is_valid(first_column(table, ("ts",), TIMESTAMP))
    keep = pc.and_(pc.fill_null(pc.starts_with(note, NOTE_PREFIX), False), timed)
    table = table.filter(keep)
    named = first_column(table, ("sensor",), pa.string())
    columns = {
        "ts": first_column(table, ("ts",), TIMESTAMP),
        "sensor": pc.fill_null(named, sensor or DEFAULT_SENSOR),
        "note": first_column(table, ("note",), pa.string()),
        "server_h": first_column(table, ("dst", "id.resp_h"), pa.string()),
        "proto": pc.utf8_lower(first_column(table, ("proto",), pa.string())),
        "server_p": first_column(table, ("p", "id.resp_p"), pa.uint16()),
        "client_h": first_column(table, ("src", "id.orig_h"), pa.string()),
        "uid": first_column(table, ("uid",), pa.string()),
        "msg": first_column(table, ("msg",), pa.string()),
    }
    return pa.table(columns, schema=NOTICE_SCHEMA)
