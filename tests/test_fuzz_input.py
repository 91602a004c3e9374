"""Fuzzing the three input formats: Zeek TSV, Zeek JSON and Suricata eve.json.

Lines are built from good records with values replaced by values at the
edges of each type, random text and bytes, escapes, deep nesting, junk
lines, blank lines and stray header lines. For every generated log:
no exception escapes the ingest, every data line is stored or quarantined
(exactly once), and every query on the resulting store answers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.ingest.conn_ingest import ingest_paths
from synack.inventory import server_ports
from tests import shorthands as inventory
from tests.conftest import CONN_HEADER_FIELDS, conn_header, conn_line, eve_flow_event

EDGES = [
    "-", "(empty)", "", "\\x", "\\x1", "\\x1b[31m", "\\xff\\xfe", "\\\\", "1e300", "-1e300", "inf", "-inf", "nan",
    "-1", "0", str(2**63 - 1), str(2**63), str(2**64 - 1), str(2**64), "1" * 40, "70000", "65535", "0x10", "T", "F",
    "::1", "::ffff:10.0.0.1", "999.1.1.1", "ffff::ffff::1", "10.0.0.1/24", "253402300800.0", "-5.0", "1.5e9",
    "\u202eevil", "\x00", "\x7f", "a,b,c", "(empty),x", "日本語", "\U0001f604",
]  # fmt: skip
# Random examples on a developer's machine, the same ones in CI (conftest's "ci" profile).
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

value_text = st.one_of(
    st.sampled_from(EDGES),
    st.text(alphabet=st.characters(blacklist_characters="\t\n\r"), max_size=12),
    st.binary(max_size=8).map(lambda b: b.decode("latin-1")).filter(lambda t: not any(c in t for c in "\t\n\r")),
)


def _assert_store_is_whole(store: Path, lines: int, rows: int, quarantined: int) -> None:
    assert rows + quarantined == lines, (rows, quarantined, lines)
    if rows:
        inventory.servers(store)
        inventory.clients(store)
        inventory.closed(store)
        inventory.new_servers(store, "2026-01-01")
        inventory.gone_servers(store)
        server_ports.hosts_serving(store)


def _ingest(name: str, data: bytes) -> tuple[Path, int, int, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory()
    log = Path(tmp.name) / name
    log.write_bytes(data)
    summary = ingest_paths([log], Path(tmp.name) / "store")
    assert not summary.errors, [f.message for f in summary.errors]
    return Path(tmp.name) / "store", summary.rows, summary.quarantined, tmp


@st.composite
def tsv_logs(draw: st.DrawFn) -> tuple[bytes, int]:
    """(a Zeek TSV conn log, how many data lines it holds)."""
    out, lines = [conn_header()], 0
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["good", "mutated", "mutated", "junk", "blank", "header", "bad-header"]))
        if kind == "blank":
            out.append("\n")
            continue
        if kind == "header":
            out.append(conn_header())
            continue
        if kind == "bad-header":
            out.append("#separator \\x09\n#fields\tts\tuid\n")
            continue
        fields = conn_line(f"C{i}", ts=1795000000.0 + i).rstrip("\n").split("\t")
        if kind == "mutated":
            for _ in range(draw(st.integers(1, 3))):
                fields[draw(st.integers(0, len(CONN_HEADER_FIELDS) - 1))] = draw(value_text)
        line = "\t".join(fields) if kind != "junk" else draw(value_text) or "x"
        if line.startswith("#") or not line.strip():
            line = "x" + line
        out.append(line + "\n")
        lines += 1
    raw = "".join(out).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # a line of raw bytes: invalid UTF-8, NUL, a lone CR...
        junk = draw(st.binary(min_size=1, max_size=20)).replace(b"\n", b"")
        # (a line of only CRs is a blank line of a CRLF file: skipped, so it gets an x)
        raw += (b"x" + junk if not junk.strip(b"\r") or junk.startswith(b"#") else junk) + b"\n"
        lines += 1
    return raw, lines


json_value: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), value_text,
        st.sampled_from([1e300, -1e300, 2**63, 2**64, 253402300800]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
    max_leaves=8,
)  # fmt: skip


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


ZEEK_JSON_BASE = {
    "ts": 1795000000.0, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 40000, "id.resp_h": "10.0.0.2",
    "id.resp_p": 80, "proto": "tcp", "conn_state": "SF", "history": "ShADadFf", "orig_pkts": 3, "resp_pkts": 2,
}  # fmt: skip


@st.composite
def zeek_json_logs(draw: st.DrawFn) -> tuple[bytes, int]:
    out, lines = [json.dumps(ZEEK_JSON_BASE)], 1
    for i in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["good", "mutated", "mutated", "nested", "junk"]))
        record = dict(ZEEK_JSON_BASE, uid=f"C{i}", ts=1795000000.0 + i)
        if kind == "mutated":
            for _ in range(draw(st.integers(1, 3))):
                record[draw(st.sampled_from(list(ZEEK_JSON_BASE) + ["extra"]))] = draw(json_value)
        elif kind == "nested":
            record["extra"] = _nested(draw(st.integers(1, 60)))
        line = json.dumps(record) if kind != "junk" else "{" + draw(value_text)
        out.append(line)
        lines += 1
    return ("\n".join(out) + "\n").encode("utf-8", "surrogatepass"), lines


EVE_BASE = eve_flow_event()


@st.composite
def eve_logs(draw: st.DrawFn) -> tuple[bytes, int]:
    out, lines = [json.dumps(EVE_BASE)], 1
    for i in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["good", "mutated", "mutated", "flags", "bytes"]))
        event = json.loads(json.dumps(EVE_BASE))
        event["flow_id"] = i + 2
        line = ""
        if kind == "mutated":
            for _ in range(draw(st.integers(1, 3))):
                where = draw(st.sampled_from(["top", "flow", "tcp"]))
                target = event[where] if isinstance(event.get(where), dict) and event[where] else event
                key = draw(st.sampled_from(sorted(target)))
                if key != "event_type":
                    target[key] = draw(json_value)
        elif kind == "flags":
            event["tcp"]["tcp_flags_tc"] = draw(st.sampled_from(["1b" * 20, "zz", "", "-1", "ffffffffffffffffff"]))
        line = json.dumps(event)
        if kind == "bytes":
            line = line.replace('"tls"', '"t\udcff\udcfels"').replace('"sensorA"', '"s\udcc3"')
        out.append(line)
        lines += 1
    return ("\n".join(out) + "\n").encode("utf-8", "surrogateescape"), lines


@pytest.mark.parametrize(
    ("name", "logs"),
    [("conn.log", tsv_logs()), ("conn.json", zeek_json_logs()), ("eve.json", eve_logs())],
    ids=["zeek-tsv", "zeek-json", "suricata-eve"],
)
@given(data=st.data())
@SETTINGS
def test_fuzzed_log(name: str, logs: st.SearchStrategy[tuple[bytes, int]], data: st.DataObject) -> None:
    raw, lines = data.draw(logs)
    store, rows, quarantined, tmp = _ingest(name, raw)
    with tmp:
        _assert_store_is_whole(store, lines, rows, quarantined)


def test_ci_draws_the_same_examples_every_run() -> None:
    """conftest's "ci" profile: property tests in CI repeat their examples (a
    seed per test), so CI judges the code, not the draw."""
    assert settings.get_profile("ci").derandomize
    if os.environ.get("CI"):
        assert settings.default.derandomize
