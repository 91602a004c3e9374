"""Text from a log made safe to print anywhere: every output, not only a terminal.

Control characters (C0, DEL, C1) and the invisible formatting characters
that reorder or hide text (bidi overrides and isolates, zero-width
characters, the byte-order mark) are written as `\\xNN` / `\\uNNNN`; every
other character, non-ASCII letters included, is kept. Tables for a terminal
go further (printable ASCII only, see inventory.text_table).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_RANGES = [(0x00, 0x1F), (0x7F, 0x9F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2069), (0xFEFF, 0xFEFF)]
_INVISIBLE = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _RANGES) + "]")
#: The same characters for Arrow's (RE2) regular expressions.
_INVISIBLE_RE2 = "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in _RANGES) + "]"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plural(count: int, noun: str) -> str:
    """`count` with thousands separators and `noun`, plural unless one: "1 file", "2,000 rows"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def visible(text: str) -> str:
    """`text` with its control and invisible formatting characters escaped."""
    return _INVISIBLE.sub(_escape, text)


def visible_array(values: pa.Array) -> pa.Array:
    """A string array with `visible` applied to the values that need it
    (found with one vectorized match; only those are rewritten)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if plain_ascii(values):
        return values
    hits = np.asarray(pc.fill_null(pc.match_substring_regex(values, _INVISIBLE_RE2), False), dtype=bool)
    if not hits.any():
        return values
    texts = values.to_pylist()
    for i in np.flatnonzero(hits):
        texts[i] = visible(texts[i])
    return pa.array(texts, type=values.type)


def string_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array's values: value i is
    bytes[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]] (nulls empty)."""
    large = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    offset_type: type[np.signedinteger[Any]] = np.int64 if large else np.int32
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[values.offset : values.offset + len(values) + 1]
    if data_buffer is None or not len(offsets):
        return offsets, np.zeros(0, dtype=np.uint8)
    return offsets, np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]


def plain_ascii(values: pa.Array) -> bool:
    """Whether every value of a string array is printable ASCII (no byte
    below 0x20, DEL or above 0x7F): `visible` would change none of them.
    One pass over the bytes, not a regular expression per value."""
    _, data = string_bytes(values)
    return not len(data) or bool(((data >= 0x20) & (data < 0x7F)).all())
