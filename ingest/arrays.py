"""Small Arrow helpers shared by the readers and the aggregation."""

from __future__ import annotations

import pyarrow as pa


def one_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """`column` as one contiguous array, copied only when it has several
    chunks (`combine_chunks` copies even a single chunk)."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks()
