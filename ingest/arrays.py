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


def first_column(table: pa.Table, names: tuple[str, ...], kind: pa.DataType) -> pa.Array:
    """The first of `names` the table has, as one array cast to `kind`
    (dictionaries decoded); all nulls when it has none of them."""
    for name in names:
        if name in table.column_names:
            col = one_array(table.column(name))
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            return col.cast(kind)
    return pa.nulls(len(table), kind)
