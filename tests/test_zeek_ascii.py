"""The ASCII reader: header-driven parsing, escapes, markers, bad lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synack.ingest.zeek_ascii import HeaderBuilder, _find_line_starting, read_block

UTC = dt.UTC
MASKED_TS = b"XXXXXXXXXX.XXXXXX"


def parse(text: bytes) -> tuple[list[dict[str, object]], list[tuple[int, str, bytes]]]:
    builder = HeaderBuilder(meta_prefix=text[: text.find(b"separator")] or b"#")
    parsed = read_block(text, builder, 1)
    rows = [r for t in parsed.tables for r in t.to_pylist()]
    return rows, [(q.line, q.reason, q.text) for q in parsed.quarantined]


def format_sample(corpus: Path, name: str) -> bytes:
    """A writer baseline without its btest banner, masked times made valid."""
    raw = (corpus / "_format-samples" / name).read_bytes().split(b"\n", 1)[1]
    return raw.replace(MASKED_TS, b"1300000000.500000").replace(b"#open XXXX", b"#open\tXXXX")


HEADER = (
    b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\ttest\n"
    b"#fields\tt\tc\ts\tb\ta\tss\n#types\ttime\tcount\tstring\tbool\taddr\tset[string]\n"
)


def test_unset_is_null_and_empty_is_empty_never_zero_or_false() -> None:
    rows, bad = parse(HEADER + b"-\t-\t-\t-\t-\t-\n1.5\t0\t(empty)\tF\t10.0.0.1\t(empty)\n")
    assert bad == []
    assert rows[0] == {"t": None, "c": None, "s": None, "b": None, "a": None, "ss": None}
    assert rows[1]["c"] == 0 and rows[1]["s"] == "" and rows[1]["b"] is False and rows[1]["ss"] == []


def test_time_is_utc_microseconds() -> None:
    rows, _ = parse(HEADER + b"1300475167.096535\t1\tx\tT\t10.0.0.1\ta,b\n")
    assert rows[0]["t"] == dt.datetime(2011, 3, 18, 19, 6, 7, 96535, tzinfo=UTC)
    assert rows[0]["ss"] == ["a", "b"]


def test_quote_and_hash_inside_values_are_kept_whole() -> None:
    rows, bad = parse(HEADER + b'1.0\t1\tsay "hi" # not a comment\tT\t10.0.0.1\t"x",#y\n')
    assert bad == []
    assert rows[0]["s"] == 'say "hi" # not a comment'
    assert rows[0]["ss"] == ['"x"', "#y"]


def test_ipv6_addresses_become_canonical() -> None:
    rows, bad = parse(HEADER + b"1.0\t1\tx\tT\t2001:0db8:0000:0000:0000:0000:0000:0001\t-\n")
    assert bad == [] and rows[0]["a"] == "2001:db8::1"


def test_bad_lines_are_quarantined_with_line_number_and_reason() -> None:
    body = (
        b"1.0\t1\tok\tT\t10.0.0.1\t-\n"
        b"1.0\t1\tshort\n"
        b"1.0\tmany\tx\tT\t10.0.0.1\t-\n"
        b"nope\t1\tx\tT\t10.0.0.1\t-\n"
        b"1.0\t1\tx\tT\t10.0.0.999\t-\n"
        b"1.0\t1\tbad\\q escape\tT\t10.0.0.1\t-\n"
        b"2.0\t2\tok2\tT\t10.0.0.2\t-\n"
    )
    rows, bad = parse(HEADER + body)
    assert [r["s"] for r in rows] == ["ok", "ok2"]
    header_lines = HEADER.count(b"\n")
    lines = {line - header_lines: reason for line, reason, _ in bad}
    assert set(lines) == {2, 3, 4, 5, 6}
    assert "expected 6 fields, got 3" in lines[2]
    assert lines[3].startswith("c (count)") and "many" in lines[3]
    assert lines[4].startswith("t (time)")
    assert lines[5] == "a: invalid address"
    assert lines[6] == "s: bad escape"
    assert [t for _, _, t in bad if b"short" in t] == [b"1.0\t1\tshort"]


def test_concatenated_logs_switch_headers() -> None:
    second = HEADER.replace(b"\tc\ts\t", b"\tc\tq\t").replace(b"#set_separator\t,", b"#set_separator\t;")
    rows, bad = parse(HEADER + b"1.0\t1\tx\tT\t10.0.0.1\ta,b\n#close\tX\n" + second + b"2.0\t2\ty\tF\t10.0.0.2\ta;b\n")
    assert bad == []
    assert rows[0]["s"] == "x" and rows[0]["ss"] == ["a", "b"]
    assert rows[1]["q"] == "y" and rows[1]["ss"] == ["a", "b"]


def test_format_sample_escape_binary(zeek_corpus: Path) -> None:
    rows, bad = parse(format_sample(zeek_corpus, "ascii-escape-binary__test.log"))
    values = [r["s"] for r in rows]
    assert bad == []
    assert values[0] == "AB\x00CD\x00"
    assert values[1] == "AB\\xffCD\x00"  # invalid UTF-8 stays visible as \xNN in text
    assert values[2] == "AB\\xffCD\x00"  # an escaped backslash followed by "xff"
    assert values[4] == "abc\\x00def"
    assert "foo \u00ae bar \\xc2\\xae baz" in values


def test_format_sample_unset_lookalike(zeek_corpus: Path) -> None:
    rows, _ = parse(format_sample(zeek_corpus, "ascii-escape-notset-str__test.log"))
    assert rows == [{"x": "-", "y": None, "z": ""}]


def test_format_sample_set_separator_escapes(zeek_corpus: Path) -> None:
    rows, _ = parse(format_sample(zeek_corpus, "ascii-escape-set-separator__test.log"))
    assert rows == [{"ss": [",", "CC", ",,", "AA"]}]


def test_format_sample_custom_empty_marker(zeek_corpus: Path) -> None:
    rows, _ = parse(format_sample(zeek_corpus, "ascii-escape-empty-str__test.log"))
    assert rows == [{"ss": ["EMPTY"]}]


def test_format_sample_multibyte_separator(zeek_corpus: Path) -> None:
    rows, bad = parse(format_sample(zeek_corpus, "ascii-escape__ssh.log"))
    assert bad == []
    assert [r["status"] for r in rows] == ["success", "failure", "fa||ure", "su||ess", "failure"]
    assert rows[0]["id.resp_p"] == 80


def test_format_sample_meta_prefix_and_custom_markers(zeek_corpus: Path) -> None:
    rows, bad = parse(format_sample(zeek_corpus, "ascii-empty__ssh-filtered.log"))
    assert bad == []
    assert [r["status"] for r in rows] == ["success", None, "failure", None, "failure"]
    assert rows[4]["country"] == "" and rows[4]["b"] is True and rows[0]["b"] is None


def test_format_sample_every_type(zeek_corpus: Path) -> None:
    rows, bad = parse(format_sample(zeek_corpus, "ascii-gz__ssh-uncompressed.log"))
    assert bad == []
    r = rows[0]
    assert (r["b"], r["i"], r["e"], r["c"], r["p"], r["sn"], r["a"], r["d"]) == (
        True,
        -42,
        "SSH::LOG",
        21,
        123,
        "10.0.0.0/24",
        "1.2.3.4",
        3.14,
    )
    assert r["iv"] == 100.0 and r["s"] == "hurz"
    assert r["sc"] == [4, 2, 3, 1] and r["ss"] == ["CC", "BB", "AA"] and r["se"] == [] and r["vc"] == [10, 20, 30]
    assert r["f"].startswith("SSH::foo: function(i:count) : string\n{ \nif")


def test_format_sample_line_like_comment(zeek_corpus: Path) -> None:
    rows, _ = parse(format_sample(zeek_corpus, "ascii-line-like-comment__test.log"))
    assert [r["data"] for r in rows] == ["Test1", "#Kaputt", "Test2"]


def test_format_sample_odd_url_keeps_invalid_utf8_visible(zeek_corpus: Path) -> None:
    rows, _ = parse(format_sample(zeek_corpus, "ascii-escape-odd-url__http.log"))
    assert "arheoloogia_uurimisr\\xfchma_seminar" in rows[0]["uri"]
    assert rows[0]["tags"] == [] and rows[0]["resp_mime_types"] == ["text/html"] and rows[0]["referrer"] is None


@pytest.mark.parametrize("value", [b"\\x2d", b"\\x28empty)"])
def test_escaped_markers_are_literal(value: bytes) -> None:
    rows, _ = parse(HEADER + b"1.0\t1\t" + value + b"\tT\t10.0.0.1\t-\n")
    assert rows[0]["s"] == value.decode().replace("\\x2d", "-").replace("\\x28", "(")


def test_server_reply_decodes_to_bytes() -> None:
    header = HEADER.replace(b"\ts\t", b"\tserver_reply\t")
    parsed = read_block(header + b"1.0\t1\tSSH-2.0\\x0d\\x0a\\xff\\\\x\tT\t10.0.0.1\t-\n", HeaderBuilder(), 1)
    column = parsed.tables[0].column("server_reply")
    assert column.type == pa.binary()
    assert column.to_pylist() == [b"SSH-2.0\r\n\xff\\x"]


@settings(max_examples=300, deadline=None)
@given(block=st.lists(st.sampled_from([b"#", b"\n", b"a", b"\t", b"##"]), max_size=300).map(b"".join),
       start=st.integers(0, 40))  # fmt: skip
def test_the_fast_meta_line_search_finds_what_find_finds(block: bytes, start: int) -> None:
    pos = min(start, len(block))
    assert _find_line_starting(bytearray(block), b"\n#", pos, len(block)) == block.find(b"\n#", pos, len(block))
