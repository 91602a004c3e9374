"""The sensor's own notices of new server ports (notice.zeek's, ingested from notice.log)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synack.ingest.snapshot import NOTICE_SCHEMA
from synack.inventory.networks import Network, in_networks
from synack.inventory.store_reader import StoreLike, snapshot_of

KEY = ["server_h", "proto", "server_p"]


def sensor_notices(store: StoreLike, start: dt.datetime | None = None, end: dt.datetime | None = None, *,
                   nets: list[Network] | None = None, sensors: list[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """The SynAck notices raised in [start, end) (NOTICE_SCHEMA's columns),
    oldest first, of servers in `nets` seen by `sensors` (None: all)."""
    table = snapshot_of(store).read_notices(NOTICE_SCHEMA)
    keep = pa.array(in_networks(table.column("server_h").combine_chunks(), nets)) if nets is not None else None
    if sensors is not None:
        by_sensor = pc.fill_null(pc.is_in(table.column("sensor"), pa.array(sensors, pa.string())), False)
        keep = by_sensor if keep is None else pc.and_(keep, by_sensor)
    if start is not None:
        after = pc.greater_equal(table.column("ts"), pa.scalar(start, NOTICE_SCHEMA.field("ts").type))
        keep = after if keep is None else pc.and_(keep, after)
    if end is not None:
        before = pc.less(table.column("ts"), pa.scalar(end, NOTICE_SCHEMA.field("ts").type))
        keep = before if keep is None else pc.and_(keep, before)
    if keep is not None:
        table = table.filter(keep)
    df = table.to_pandas()
    return df.sort_values(["ts", *KEY], kind="stable").reset_index(drop=True)


def first_notices(notices: pd.DataFrame) -> pd.DataFrame:
    """The first notice time (`notice_ts`) per server port (KEY) of `notices`."""
    return notices.groupby(KEY, as_index=False, sort=False)["ts"].min().rename(columns={"ts": "notice_ts"})
