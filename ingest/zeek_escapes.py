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

from synack.ingest.arrays import one_array

_BACKSLASH = 0x5C
_X = 0x78

_HEX_VALUE = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX_VALUE[_c] = 10 + _i


def _validity(values: pa.Array) -> pa.Buffer | None:
    """The validity bitmap of `values`, realigned to offset 0."""
    if values.null_count == 0:
        return None
    valid = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _owners(offsets: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    """The value each of the sorted byte `positions` belongs to: from a map of
    every byte's value when they are many (one pass over the bytes), by
    binary search when they are few."""
    if len(positions) * 16 < int(offsets[-1]):
        return np.searchsorted(offsets, positions, side="right") - 1
    return np.repeat(np.arange(n, dtype=np.int32), np.diff(offsets))[positions].astype(np.int64)


def _decode_binary(values: pa.BinaryArray, backslash_escapes: bool) -> tuple[pa.Array, np.ndarray]:
    """Decode every value of `values` (nulls are kept); return (decoded, bad_mask).

    Work is proportional to the number of backslashes, plus one vectorized
    pass over the bytes to find them and one to drop the consumed ones.
    """
    n = len(values)
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset : values.offset + n + 1].astype(np.int64)
    base = int(offsets[0])
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)[base : int(offsets[-1])]
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    offsets -= base
    size = len(data)
    bad = np.zeros(n, dtype=bool)
    slashes = np.flatnonzero(data == _BACKSLASH)
    if size == 0 or len(slashes) == 0:
        return values, bad
    data = data.copy()  # decoded in place below
    value_of = _owners(offsets, slashes, n)
    adjacent = slashes[1:] == slashes[:-1] + 1
    if backslash_escapes and adjacent.any():
        # In a run of backslashes, every other one (from the run's start)
        # begins an escape: "\\\\x41" is an escaped backslash, then "x41".
        k = np.arange(len(slashes))
        new_run = np.ones(len(slashes), dtype=bool)
        new_run[1:] = ~adjacent | (value_of[1:] != value_of[:-1])
        run_start = np.maximum.accumulate(np.where(new_run, k, 0))
        is_start = ((k - run_start) % 2) == 0
        starts, start_value = slashes[is_start], value_of[is_start]
    else:
        starts, start_value = slashes, value_of
    value_end = offsets[start_value + 1]
    last = size - 1
    nxt = data[np.minimum(starts + 1, last)]
    nxt[starts + 1 >= value_end] = 0
    hi = _HEX_VALUE[data[np.minimum(starts + 2, last)]]
    lo = _HEX_VALUE[data[np.minimum(starts + 3, last)]]
    is_hex = (nxt == _X) & (starts + 3 < value_end) & (hi >= 0) & (lo >= 0)
    if not backslash_escapes:
        # A JSON writer's backslash that is not "\xNN" is an ordinary byte.
        starts, start_value, hi, lo = starts[is_hex], start_value[is_hex], hi[is_hex], lo[is_hex]
        is_hex = np.ones(len(starts), dtype=bool)
    hex_at = starts[is_hex]
    data[hex_at] = (hi[is_hex] * 16 + lo[is_hex]).astype(np.uint8)
    keep = np.ones(size, dtype=bool)
    keep[hex_at + 1] = False
    keep[hex_at + 2] = False
    keep[hex_at + 3] = False
    removed = np.bincount(start_value[is_hex], minlength=n) * 3  # bytes dropped per value
    if backslash_escapes:
        is_pair = nxt == _BACKSLASH
        keep[starts[is_pair]] = False
        bad[start_value[~(is_hex | is_pair)]] = True
        removed += np.bincount(start_value[is_pair], minlength=n)
    new_data = data[keep]
    new_offsets = offsets - np.concatenate(([0], np.cumsum(removed)))
    decoded = pa.BinaryArray.from_buffers(
        pa.binary(), n, [_validity(values), pa.py_buffer(new_offsets.astype(np.int32)), pa.py_buffer(new_data)]
    )
    return decoded, bad


def decode_escapes(
    values: pa.Array, *, backslash_escapes: bool = True, as_text: bool = True
) -> tuple[pa.Array, pa.Array]:
    """Return (`values` with Zeek escapes decoded, a boolean bad-escape mask).

    `values` is a string or binary array (nulls allowed, kept). With
    `backslash_escapes` (the ASCII writer) `\\\\` is a backslash and any
    other backslash sequence than `\\xNN` is a bad escape; without it (the
    JSON writer) only `\\xNN` is decoded. With `as_text` the result is a
    string array; decoded bytes that are not valid UTF-8 are shown again as
    `\\xNN` so the text stays valid. Otherwise the result is binary.
    """
    values = one_array(values)
    binary = values.cast(pa.binary()) if not pa.types.is_binary(values.type) else values
    if not _has_backslash(binary):  # one memchr over the column; most columns hold no escape
        return _as_asked(values, binary, as_text, unchanged=True), pa.array(np.zeros(len(values), dtype=bool))
    if len(binary) >= REPEATS_FROM:
        encoded = binary.dictionary_encode()
        if len(encoded.dictionary) * 2 <= len(binary):
            # Values repeat (banners, replies): each distinct one is decoded once.
            distinct, bad = _decode_binary(encoded.dictionary, backslash_escapes)
            decoded = _as_asked(encoded.dictionary, distinct, as_text, unchanged=distinct is encoded.dictionary)
            return pc.take(decoded, encoded.indices), pc.fill_null(pc.take(pa.array(bad), encoded.indices), False)
    decoded, bad = _decode_binary(binary, backslash_escapes)
    return _as_asked(values, decoded, as_text, unchanged=decoded is binary), pa.array(bad)


#: Values decoded one by one below this many; from it, distinct values are
#: decoded once when they are at most half of the values.
REPEATS_FROM = 256


def _has_backslash(values: pa.BinaryArray) -> bool:
    """Whether the data buffer behind `values` holds a backslash (the whole
    buffer of a slice: a false alarm only costs the exact scan)."""
    data = values.buffers()[2]
    return data is not None and data.to_pybytes().find(b"\\") >= 0


def _as_asked(values: pa.Array, decoded: pa.BinaryArray, as_text: bool, *, unchanged: bool) -> pa.Array:
    """`decoded` (the binary decoding of `values`) as text or binary, as asked:
    `values` itself when nothing changed and it has that type already (no
    copy, no second UTF-8 check). Decoded bytes that are not valid UTF-8 are
    shown again as `\\xNN` in text."""
    if unchanged and as_text == pa.types.is_string(values.type):
        return values
    if not as_text:
        return decoded
    try:
        return decoded.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array(
            [v.decode("utf-8", "backslashreplace") if v is not None else None for v in decoded.to_pylist()],
            pa.string(),
        )
