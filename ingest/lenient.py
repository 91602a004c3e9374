"""Casting text columns value by value without a per-value Python loop.

When a block of lines fails its typed parse, readers parse it again with
every column as text and convert each column here: the values that convert
are kept, the others are marked bad, so the bad lines are set aside in one
pass instead of by bisecting the block down to single lines.

The accepted syntax is exactly Arrow's (the typed parse's): values of the
plain form (digits, a sign, a decimal point, an exponent) are converted in
bulk; values made only of the characters a number can hold but not of the
plain form ("inf", "+5", "0x1f") are rare and cast one at a time; any other
value cannot be a number and is bad.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PLAIN_FLOAT = r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
_PLAIN_UINT = r"^[0-9]{1,19}$"  # below 10**19: fits uint64 (and, checked below, int64)
_PLAIN_INT = r"^-?[0-9]{1,18}$"
_FLOAT_CHARS = r"^[-+0-9.eEinfatyINFATYxX]+$"
_INT_CHARS = r"^[-+0-9xXa-fA-F]+$"


def _mask(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _plain_and_possible(col: pa.Array, target: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_floating(target):
        plain, chars = _PLAIN_FLOAT, _FLOAT_CHARS
    elif pa.types.is_signed_integer(target):
        plain, chars = _PLAIN_INT, _INT_CHARS
    else:
        plain, chars = _PLAIN_UINT, _INT_CHARS
    return _mask(pc.match_substring_regex(col, plain)), _mask(pc.match_substring_regex(col, chars))


def cast_text(col: pa.Array, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast text `col` to the number or bool type `target`.

    Returns (values, bad): `values` has `target`'s type, null where `col` is
    null or the value does not convert; `bad` is True where a non-null value
    did not convert.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    try:
        return pc.cast(col, target), np.zeros(len(col), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    present = ~_mask(pc.is_null(col))
    if pa.types.is_boolean(target):
        true, false = _mask(pc.equal(col, "T")), _mask(pc.equal(col, "F"))
        bad = present & ~true & ~false
        return pa.array(true, mask=~(true | false)), bad
    plain, possible = _plain_and_possible(col, target)
    ok = present & plain
    values = np.zeros(len(col), dtype=target.to_pandas_dtype())
    if ok.any():
        wide = (
            pa.float64()
            if pa.types.is_floating(target)
            else pa.int64()
            if pa.types.is_signed_integer(target)
            else pa.uint64()
        )
        converted = pc.cast(col.filter(pa.array(ok)), wide).to_numpy(zero_copy_only=False)
        if not pa.types.is_floating(target):
            info = np.iinfo(target.to_pandas_dtype())
            fits = (converted >= info.min) & (converted <= info.max)
            positions = np.flatnonzero(ok)
            ok[positions[~fits]] = False
            converted = converted[fits]
        values[ok] = converted
    for i in np.flatnonzero(present & ~plain & possible):
        try:
            values[i] = pc.cast(col.slice(int(i), 1), target)[0].as_py()
            ok[i] = True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            pass
    return pa.array(values, type=target, mask=~ok), present & ~ok
