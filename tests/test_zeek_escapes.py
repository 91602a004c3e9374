"""Vectorized decoding of Zeek escapes, checked against a per-value reference."""

from __future__ import annotations

import random
import re

import pyarrow as pa
import pytest

from synack.ingest.zeek_escapes import REPEATS_FROM, decode_escapes


def reference(value: bytes) -> tuple[bytes, bool]:
    """Straightforward left-to-right decoder of the ASCII writer's escapes."""
    out, i, bad = bytearray(), 0, False
    while i < len(value):
        c = value[i]
        if c != 0x5C:
            out.append(c)
            i += 1
        elif value[i + 1 : i + 2] == b"\\":
            out.append(0x5C)
            i += 2
        elif re.fullmatch(rb"x[0-9a-fA-F]{2}", value[i + 1 : i + 4]):
            out.append(int(value[i + 2 : i + 4], 16))
            i += 4
        else:
            bad = True
            out.append(c)
            i += 1
    return bytes(out), bad


ESCAPES = [b"\\", b"\\\\", b"\\x41", b"\\xff", b"\\x0"]


DENSE = [b"x", b"4", b"1", b"f", b"g", b"a", b" "]
SPARSE = [b"abcdefgh", b"x41", b"plain text "] * 40


@pytest.mark.parametrize("plain", [DENSE, SPARSE])
def test_matches_the_reference_on_random_escape_soup(plain: list[bytes]) -> None:
    """Escape-dense values, and long values with rare escapes (the two ways
    the decoder finds which value a backslash belongs to)."""
    rng = random.Random(7)
    alphabet = plain + ESCAPES
    values = [b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(3000)]
    decoded, bad = decode_escapes(pa.array(values, pa.binary()), as_text=False)
    for v, d, b in zip(values, decoded.to_pylist(), bad.to_pylist()):
        ref, ref_bad = reference(v)
        assert b == ref_bad, v
        if not ref_bad:
            assert d == ref, v


def test_nulls_and_values_without_backslash_are_untouched() -> None:
    values = pa.array(["plain", None, "", "a\\x41"])
    decoded, bad = decode_escapes(values)
    assert decoded.to_pylist() == ["plain", None, "", "aA"]
    assert bad.to_pylist() == [False] * 4


def test_json_mode_leaves_lone_backslashes() -> None:
    decoded, bad = decode_escapes(pa.array(["C:\\dir\\x41", "\\\\"]), backslash_escapes=False)
    assert decoded.to_pylist() == ["C:\\dirA", "\\\\"]
    assert not any(bad.to_pylist())


def test_sliced_input_arrays() -> None:
    values = pa.array(["zz", "a\\x42", "\\\\x", "q"]).slice(1, 2)
    decoded, _ = decode_escapes(values)
    assert decoded.to_pylist() == ["aB", "\\x"]


@pytest.mark.parametrize("as_text", [False, True])
def test_repeated_values_decode_as_each_one_alone(as_text: bool) -> None:
    """A column of few distinct values (a reply column's banners) is decoded
    once per distinct value: the same answers, nulls and bad escapes in place."""
    rng = random.Random(11)
    distinct = [b"".join(rng.choice(DENSE + ESCAPES) for _ in range(rng.randrange(0, 12))) for _ in range(40)]
    values = [rng.choice(distinct) if rng.random() > 0.1 else None for _ in range(4 * REPEATS_FROM)]
    column = pa.array(values, pa.binary()) if not as_text else pa.array([v and v.decode() for v in values])
    decoded, bad = decode_escapes(column, as_text=as_text)
    one_by_one = [decode_escapes(column.slice(i, 1), as_text=as_text) for i in range(len(values))]
    assert decoded.type == (pa.string() if as_text else pa.binary())
    assert decoded.to_pylist() == [d[0].to_pylist()[0] for d in one_by_one]
    assert bad.to_pylist() == [b[1].to_pylist()[0] for b in one_by_one]
    assert any(bad.to_pylist()) and decoded.null_count == values.count(None) > 0
