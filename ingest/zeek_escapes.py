"""Decoding of the Zeek writers' byte escapes, vectorized over Arrow arrays.

Zeek's ASCII writer writes a backslash as `\\\\` and any non-printable byte,
separator byte or leading marker character as `\\xNN`; its JSON writer
writes bytes that are not valid UTF-8 (and control bytes) as `\\xNN` too.
Only values containing a backslash are touched; the decoding itself runs
in numpy over the whole subset's byte buffer, not per value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_BACKSLASH = 0x5C
_X = 0x78

_HEX_VALUE = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX_VALUE[_c] = 10 + _i


def _decode_binary(values: pa.BinaryArray | pa.LargeBinaryArray, backslash_escapes: bool) -> tuple[pa.Array, np.ndarray]:
    """Decode every value of `values` (no nulls); return (decoded, bad_mask)."""
    n = len(values)
    buffers = values.buffers()
    offset_type = np.int64 if isinstance(values, pa.LargeBinaryArray) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[values.offset : values.offset + n + 1].astype(np.int64)
    base = int(offsets[0])
    data = np.frombuffer(buffers[2], dtype=np.uint8)[base : int(offsets[-1])].copy() if buffers[2] is not None else np.zeros(0, np.uint8)
    offsets = offsets - base
    size = len(data)
    bad = np.zeros(n, dtype=bool)
    if size == 0:
        return values, bad

    is_bs = data == _BACKSLASH
    value_start = np.zeros(size + 1, dtype=bool)
    value_start[offsets[:-1][offsets[:-1] < size]] = True
    if backslash_escapes:
        # In a run of backslashes, every other one (from the run's start)
        # begins an escape: "\\\\x41" is an escaped backslash, then "x41".
        prev_bs = np.zeros(size, dtype=bool)
        prev_bs[1:] = is_bs[:-1]
        run_start = is_bs & (~prev_bs | value_start[:size])
        positions = np.arange(size)
        last_run_start = np.maximum.accumulate(np.where(run_start, positions, 0))
        escape = is_bs & (((positions - last_run_start) % 2) == 0)
    else:
        escape = is_bs.copy()
    starts = np.flatnonzero(escape)
    value_of = np.searchsorted(offsets, starts, side="right") - 1
    value_end = offsets[value_of + 1]

    keep = np.ones(size, dtype=bool)
    nxt = np.where(starts + 1 < value_end, data[np.minimum(starts + 1, size - 1)], 0)
    is_hex = (nxt == _X) & (starts + 3 < value_end)
    hi = _HEX_VALUE[data[np.minimum(starts + 2, size - 1)]]
    lo = _HEX_VALUE[data[np.minimum(starts + 3, size - 1)]]
    is_hex &= (hi >= 0) & (lo >= 0)
    hex_at = starts[is_hex]
    data[hex_at] = (hi[is_hex] * 16 + lo[is_hex]).astype(np.uint8)
    keep[hex_at + 1] = False
    keep[hex_at + 2] = False
    keep[hex_at + 3] = False
    if backslash_escapes:
        is_pair = nxt == _BACKSLASH
        keep[starts[is_pair]] = False
        bad_escape = ~(is_hex | is_pair)
        bad[value_of[bad_escape]] = True
    # The JSON writer leaves a backslash that is not "\xNN" as it is.

    new_offsets = np.zeros(n + 1, dtype=np.int64)
    kept = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    new_offsets[:] = kept[offsets]
    new_data = data[keep]
    decoded = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(new_offsets), pa.py_buffer(new_data)]
    ).cast(pa.binary())
    return decoded, bad


def decode_escapes(values: pa.Array, *, backslash_escapes: bool = True, as_text: bool = True) -> tuple[pa.Array, pa.Array]:
    """Return (`values` with Zeek escapes decoded, a boolean bad-escape mask).

    `values` is a string or binary array (nulls allowed, kept). With
    `backslash_escapes` (the ASCII writer) `\\\\` is a backslash and any
    other backslash sequence than `\\xNN` is a bad escape; without it (the
    JSON writer) only `\\xNN` is decoded. With `as_text` the result is a
    string array; decoded bytes that are not valid UTF-8 are shown again as
    `\\xNN` so the text stays valid. Otherwise the result is binary.
    """
    out_type = pa.string() if as_text else pa.binary()
    n = len(values)
    has_bs = pc.fill_null(pc.match_substring(values, "\\"), False)
    if not pc.any(has_bs).as_py():
        return values.cast(out_type), pa.array(np.zeros(n, dtype=bool))
    idx = pc.indices_nonzero(has_bs)
    subset = pc.take(values, idx).cast(pa.binary())
    decoded, bad_subset = _decode_binary(subset, backslash_escapes)
    if as_text:
        try:
            decoded = decoded.cast(pa.string())
        except pa.ArrowInvalid:
            decoded = pa.array(
                [v.decode("utf-8", "backslashreplace") for v in decoded.to_pylist()], pa.string()
            )
    bad = np.zeros(n, dtype=bool)
    bad[idx.to_numpy()] = bad_subset
    mask = has_bs
    full = values.cast(out_type)
    positions = np.full(n, -1, dtype=np.int64)
    positions[idx.to_numpy()] = np.arange(len(idx))
    # Scatter the decoded subset back in place.
    merged = pc.if_else(mask, pc.take(decoded, pa.array(np.maximum(positions, 0))), full)
    return merged, pa.array(bad)
