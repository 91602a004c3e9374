"""Hostile, extreme and damaged values: every line is stored or set aside with a
reason, nothing raises, and every query on the store still answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.ingest.line_parsing import BLANK
from synack.ingest.schema import ZEEK_CONN_FIELDS
from synack.ingest.zeek_ascii import ZeekHeader, read_rows
from tests import shorthands as inventory
from tests.conftest import conn_header, conn_line, eve_flow_event, run_synack, store_table, write_log

GOOD_TS = "1795000000.000000"


def quarantine_reasons(store: Path) -> list[str]:
    """The reasons of every quarantined line of the store."""
    reasons = []
    for path in sorted((store / "quarantine").rglob("*")):
        if path.is_file() and path.suffix in (".jsonl", ".json"):
            reasons += [json.loads(line)["reason"] for line in path.read_text().splitlines() if line]
    return reasons


def every_query_answers(store: Path) -> None:
    """The library's queries and the CLI's commands all succeed on `store`."""
    inventory.servers(store)
    inventory.clients(store)
    inventory.closed(store)
    inventory.new_servers(store, "2026-11-01")
    inventory.gone_servers(store)
    for command in (
        ["servers"],
        ["clients"],
        ["new-ports", "--since", "30d"],
        ["gone-ports"],
        ["servers", "--format", "json"],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "synack", *command, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0 and "Traceback" not in run.stderr, (command, run.stderr[-1500:])


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("1e300", "in the future"),
        ("inf", "in the future"),
        ("-inf", "before 1970"),
        ("253402300800.000000", "in the future"),  # year 10000
        ("253402214400.000000", "in the future"),  # 9999-12-31
        ("-5.000000", "before 1970"),
        ("nan", "ts"),
        ("not-a-time", "ts"),
    ],
)
def test_unbelievable_times_are_set_aside_and_the_store_stays_usable(tmp_path: Path, ts: str, reason: str) -> None:
    bad = conn_line("Cbad").replace(GOOD_TS, ts, 1)
    log = write_log(tmp_path / "conn.log", conn_header() + conn_line("Cgood") + bad + conn_line("Cgood2"))
    summary = ingest_paths([log], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (2, 1)
    assert sorted(store_table(tmp_path / "store")["uid"].to_pylist()) == ["Cgood", "Cgood2"]
    assert any(reason in r for r in quarantine_reasons(tmp_path / "store"))
    every_query_answers(tmp_path / "store")


def test_a_time_within_the_clock_skew_is_kept_and_beyond_it_set_aside(tmp_path: Path) -> None:
    import time

    soon, later = time.time() + 3_600, time.time() + 3 * 86_400
    text = conn_header() + conn_line("Csoon", ts=soon) + conn_line("Clater", ts=later)
    summary = ingest_paths([write_log(tmp_path / "conn.log", text)], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (1, 1)
    assert store_table(tmp_path / "store")["uid"].to_pylist() == ["Csoon"]


@pytest.mark.parametrize(
    ("value", "kept"),
    [(str(2**63), True), (str(2**64 - 1), True), (str(2**64), False), ("-1", False), ("0x10", True)],
)
def test_counts_up_to_the_top_of_zeek_count_are_stored_faithfully(tmp_path: Path, value: str, kept: bool) -> None:
    log = write_log(tmp_path / "conn.log", conn_header() + conn_line("Cgood") + conn_line("Cbig", resp_pkts=value))
    summary = ingest_paths([log], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == ((2, 0) if kept else (1, 1))
    table = store_table(tmp_path / "store")
    if kept:
        big = table.filter(pc.equal(table["uid"], "Cbig"))
        assert big["resp_pkts"][0].as_py() == int(value, 0)
        assert big["outcome"][0].as_py() == "open"
    every_query_answers(tmp_path / "store")


def test_header_types_that_disagree_with_a_core_column_do_not_break_it(tmp_path: Path) -> None:
    """`id.orig_p` typed count (70000 does not fit a port) and `ts` typed string."""
    fields = [(n, {"id.orig_p": "count", "ts": "string"}.get(n, t)) for n, t in ZEEK_CONN_FIELDS[:-1]]
    text = conn_header(fields) + conn_line("Cgood") + conn_line("Cwide", orig_p=70000) + conn_line("Cgood2")
    summary = ingest_paths([write_log(tmp_path / "conn.log", text)], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (2, 1)
    assert any("id.orig_p" in r for r in quarantine_reasons(tmp_path / "store"))
    table = store_table(tmp_path / "store")
    assert str(table.schema.field("ts").type).startswith("timestamp")
    every_query_answers(tmp_path / "store")


def test_blank_lines_are_skipped_not_quarantined(tmp_path: Path) -> None:
    text = conn_header() + conn_line("C1") + "\n" + conn_line("C2") + "\n\n" + conn_line("C3")
    summary = ingest_paths([write_log(tmp_path / "conn.log", text)], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (3, 0)


def test_the_lenient_parse_keeps_exactly_the_good_lines_in_order() -> None:
    """One pass over a block with many bad lines of several kinds gives the same
    rows as parsing only its good lines, and names each bad line."""
    header = ZeekHeader(
        fields=tuple(n for n, _ in ZEEK_CONN_FIELDS[:-1]), types=tuple(t for _, t in ZEEK_CONN_FIELDS[:-1])
    )
    lines, good = [], []
    for i in range(300):
        line = conn_line(f"C{i}", ts=1795000000.0 + i, resp_p=i % 1000)
        kind = i % 7
        if kind == 1:
            line = line.replace(GOOD_TS[:4], "zzzz", 1)  # unparsable ts
        elif kind == 3:
            line = line.replace("\tSF\t", "\tSF\textra\t", 1)  # too many fields
        elif kind == 5:
            line = line.replace("\t80\t", "\t99999\t", 1) if "\t80\t" in line else line.replace("\t5\t", "\tx\t", 1)
        else:
            good.append(line)
        lines.append(line)
    lines.insert(10, "\n")
    parsed = read_rows("".join(lines).encode(), header, 1)
    expected = read_rows("".join(good).encode(), header, 1)
    assert parsed.quarantined and not expected.quarantined
    kept = [r["uid"] for t in parsed.tables for r in t.to_pylist()]
    assert kept == [r["uid"] for t in expected.tables for r in t.to_pylist()]
    assert len(kept) + len(parsed.quarantined) == 300
    assert all(q.reason and q.reason != BLANK for q in parsed.quarantined)
    assert [q.line for q in parsed.quarantined] == sorted(q.line for q in parsed.quarantined)
    numbered = {q.line: q.text for q in parsed.quarantined}
    raw = "".join(lines).encode().split(b"\n")
    assert all(raw[n - 1] == text for n, text in numbered.items())


def test_suricata_flags_longer_than_a_tcp_header_holds_do_not_break_the_ingest(tmp_path: Path) -> None:
    event = eve_flow_event()
    event["tcp"]["tcp_flags_tc"] = "1b" * 20
    log = write_log(tmp_path / "eve.json", json.dumps(event) + "\n")
    summary = ingest_paths([log], tmp_path / "store")
    assert summary.rows + summary.quarantined == 1
    every_query_answers(tmp_path / "store")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["servers", "--since", "1000000d"], "reaches before 1970"),
        (["report", "--date", "9999-12-31"], "outside the dates"),
        (["servers", "--since", "1969-12-31"], "outside the dates"),
        (["servers", "--format", "csv", "-o", "/nonexistent-synack-dir/x.csv"], "No such file or directory"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    log = write_log(tmp_path / "conn.log", conn_header() + conn_line("C1"))
    ingest_paths([log], tmp_path / "store")
    run = run_synack(*args, "--store", str(tmp_path / "store"))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert message in run.stderr


@pytest.mark.parametrize(("toml", "message"), [("store = 5\n", "must be a string"), ("store = [\n", "cannot read")])
def test_a_bad_settings_file_is_one_line(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "synack.toml").write_text(toml)
    run = run_synack("servers", cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_an_escape_sequence_from_a_log_is_never_echoed_raw(tmp_path: Path) -> None:
    """A header that is not a conn log, naming itself with an OSC sequence."""
    log = write_log(
        tmp_path / "x.log", "#separator \\x09\n#path\tconn\x1b]0;pwned\x07\u202e\n#fields\tts\n#types\ttime\n1\n"
    )
    run = run_synack("ingest", str(log), "--store", str(tmp_path / "store"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr and "\u202e" not in run.stderr
    assert "\\x1b" in run.stderr and str(log) in run.stderr


def test_csv_and_json_escape_control_and_bidi_characters(tmp_path: Path) -> None:
    line = conn_line("C1").replace("\t-\t", "\thttp\\x1b[31m\\x07\\x00\u202eevil\t", 1)  # the service column
    ingest_paths([write_log(tmp_path / "conn.log", conn_header() + line)], tmp_path / "store")
    for fmt in ("csv", "json"):
        run = run_synack("servers", "--format", fmt, "--store", str(tmp_path / "store"))
        assert run.returncode == 0, run.stderr
        assert "evil" in run.stdout
        assert not any(c in run.stdout for c in "\x1b\x07\x00\u202e"), repr(run.stdout)


def test_an_unexpected_bug_is_one_line_naming_its_traceback_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from synack import cli

    def broken() -> None:
        raise RuntimeError("simulated bug")

    (tmp_path / "store").mkdir()
    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.setattr(sys, "argv", ["synack", "servers", "--store", str(tmp_path / "store")])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "simulated bug" in err and "bug in synack" in err
    reports = list((tmp_path / "store" / "crash").glob("crash-*.txt"))
    assert len(reports) == 1 and "RuntimeError: simulated bug" in reports[0].read_text()
    assert str(reports[0]) in err


BAD_BLOCKS = {
    "#fields without #types": "#separator \\x09\n#fields\tts\tuid\n",
    "duplicate names in #fields": conn_header().replace("#fields\tts\tuid", "#fields\tts\tts"),
    "its header has no": "#separator \\x09\n#fields\tts\tuid\n#types\ttime\tstring\n",
    "empty #separator": "#separator \n",
}


@pytest.mark.parametrize("problem", list(BAD_BLOCKS))
def test_a_bad_header_block_mid_file_sets_aside_only_its_own_lines(tmp_path: Path, problem: str) -> None:
    text = (
        conn_header() + conn_line("C1") + conn_line("C2")
        + BAD_BLOCKS[problem] + conn_line("Cx1") + conn_line("Cx2")
        + conn_header() + conn_line("C3")
    )  # fmt: skip
    summary = ingest_paths([write_log(tmp_path / "conn.log", text)], tmp_path / "store")
    assert (summary.rows, summary.quarantined, summary.errors) == (3, 2, [])
    assert sorted(store_table(tmp_path / "store")["uid"].to_pylist()) == ["C1", "C2", "C3"]
    reasons = quarantine_reasons(tmp_path / "store")
    assert len(reasons) == 2 and all(problem in r and "header block" in r for r in reasons)


def test_blank_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    summary = ingest_paths([write_log(tmp_path / "conn.log", "\n\n" + conn_header() + conn_line("C1"))], tmp_path / "s")
    assert (summary.rows, summary.quarantined, summary.errors) == (1, 0, [])


def test_an_error_names_the_files_path_not_only_its_name(tmp_path: Path) -> None:
    logs = [write_log(tmp_path / d / "conn.log", "just text\n") for d in ("a", "b")]
    summary = ingest_paths(logs, tmp_path / "store")
    messages = [f.message for f in summary.errors]
    assert len(messages) == 2 and all(str(log) in m for log, m in zip(logs, messages))


def test_the_clock_skew_allowance_is_an_option(tmp_path: Path) -> None:
    import time

    log = write_log(tmp_path / "conn.log", conn_header() + conn_line("Cahead", ts=time.time() + 3 * 3600))
    strict = run_synack("ingest", str(log), "--store", str(tmp_path / "strict"), "--clock-skew", "3600")
    assert strict.returncode == 0 and "1 lines quarantined" in strict.stderr, strict.stderr
    assert "in the future" in quarantine_reasons(tmp_path / "strict")[0]
    lenient = run_synack("ingest", str(log), "--store", str(tmp_path / "lenient"))  # default: one day
    assert lenient.returncode == 0 and "quarantined" not in lenient.stderr, lenient.stderr


def test_invalid_utf8_in_eve_text_is_replaced_and_queries_answer(tmp_path: Path) -> None:
    event = eve_flow_event()
    line = json.dumps(event).encode().replace(b'"tls"', b'"t\xff\xfels"').replace(b'"sensorA"', b'"sens\xc3or"')
    log = tmp_path / "eve.json"
    log.write_bytes(line + b"\n")
    summary = ingest_paths([log], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (1, 0)
    row = store_table(tmp_path / "store").to_pylist()[0]
    assert row["service"] == "t\ufffd\ufffdls" and row["sensor"] == "sens\ufffdor"
    every_query_answers(tmp_path / "store")


def test_a_gzip_archive_still_being_written_waits_like_a_live_file(tmp_path: Path) -> None:
    """The live log was partly read; its archive appears while gzip still writes it."""
    import gzip

    text = conn_header() + "".join(conn_line(f"C{i}", ts=1795000000.0 + i) for i in range(3000))
    live = write_log(tmp_path / "logs" / "current" / "conn.log", text[: len(text) // 10].rsplit("\n", 1)[0] + "\n")
    first = ingest_paths([tmp_path / "logs"], tmp_path / "store")
    assert first.rows > 0
    live.unlink()
    whole = gzip.compress(text.encode(), mtime=0)
    archive = tmp_path / "logs" / "2026-11-18" / "conn.00:00:00-01:00:00.log.gz"
    archive.parent.mkdir()
    archive.write_bytes(whole[: len(whole) * 9 // 10])
    run = run_synack("ingest", str(tmp_path / "logs"), "--store", str(tmp_path / "store"))
    assert run.returncode == 0 and "Traceback" not in run.stderr and "Aborted" not in run.stdout + run.stderr
    archive.write_bytes(whole)
    ingest_paths([tmp_path / "logs"], tmp_path / "store")
    uids = store_table(tmp_path / "store")["uid"].to_pylist()
    assert len(uids) == 3000 and len(set(uids)) == 3000


def test_a_raw_carriage_return_in_a_value_is_kept_in_its_line(tmp_path: Path) -> None:
    """Arrow's CSV reader ends a row at a CR; Zeek would have written \\x0d. The
    check for a CR once looked for bytes in a memoryview (never true, and slow)."""
    text = conn_header() + conn_line("C1") + conn_line("C2").replace("\t-\t", "\tht\rtp\t", 1) + conn_line("C3")
    summary = ingest_paths([write_log(tmp_path / "conn.log", text)], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (3, 0)
    table = store_table(tmp_path / "store")
    services = dict(zip(table["uid"].to_pylist(), table["service"].cast("string").to_pylist()))
    assert services["C2"] == "ht\rtp" and services["C1"] is None


def test_a_short_line_of_invalid_utf8_is_set_aside_without_an_exception_inside_arrow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arrow's CSV reader decodes a wrong-width line as UTF-8 before calling the
    lenient parse's row handler; on invalid bytes that raises inside Arrow
    (an "Exception ignored" on stderr). The lenient parse must not be tried then."""
    header = ZeekHeader(
        fields=tuple(n for n, _ in ZEEK_CONN_FIELDS[:-1]), types=tuple(t for _, t in ZEEK_CONN_FIELDS[:-1])
    )
    swallowed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", swallowed.append)
    block = (conn_line("C1") + conn_line("C2")).encode() + b"j\x9a\xfb[-\n" + conn_line("C3").encode()
    parsed = read_rows(block, header, 1)
    assert [r["uid"] for t in parsed.tables for r in t.to_pylist()] == ["C1", "C2", "C3"]
    assert [q.line for q in parsed.quarantined] == [3]
    assert swallowed == []


@pytest.mark.parametrize("form", ["ascii", "json", "eve"])
def test_a_record_whose_hosts_are_of_two_address_families_is_set_aside(tmp_path: Path, form: str) -> None:
    """No connection has an IPv4 client and an IPv6 server (or the other way
    round): such a line is malformed and set aside with its reason. Before,
    it was stored and `clients --detail` named the IPv4 client's server
    255.255.255.255 (the number that stands for "not IPv4")."""
    hosts = [("10.0.0.1", "10.0.0.2"), ("10.0.0.1", "2001:db8::5"), ("2001:db8::c", "10.0.0.2"),
             ("2001:db8::c", "2001:db8::5")]  # fmt: skip
    if form == "eve":
        events = []
        for i, (orig, resp) in enumerate(hosts):
            event = eve_flow_event()
            event.update(flow_id=i + 1, src_ip=orig, dest_ip=resp)
            events.append(json.dumps(event))
        log = write_log(tmp_path / "eve.json", "\n".join(events) + "\n")
    elif form == "json":
        rows = [{"ts": 1795000000.0 + i, "uid": f"C{i}", "id.orig_h": orig, "id.orig_p": 40000, "id.resp_h": resp,
                 "id.resp_p": 443, "proto": "tcp", "conn_state": "SF", "history": "ShADadFf"}
                for i, (orig, resp) in enumerate(hosts)]  # fmt: skip
        log = write_log(tmp_path / "conn.log", "".join(json.dumps(r) + "\n" for r in rows))
    else:
        log = write_log(tmp_path / "conn.log", conn_header() + "".join(
            conn_line(f"C{i}", orig=orig, resp=resp) for i, (orig, resp) in enumerate(hosts)))  # fmt: skip
    summary = ingest_paths([log], tmp_path / "store")
    assert (summary.rows, summary.quarantined) == (2, 2)
    assert quarantine_reasons(tmp_path / "store") == ["id.orig_h, id.resp_h: of different address families"] * 2
    pairs = inventory.client_pairs(tmp_path / "store", nets="all")
    same_family = [("10.0.0.1", "10.0.0.2"), ("2001:db8::c", "2001:db8::5")]
    assert sorted(zip(pairs["client_h"], pairs["server_h"])) == same_family
    every_query_answers(tmp_path / "store")
