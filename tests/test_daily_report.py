"""The daily report: content, hostile data, files, and a real browser."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synack.ingest.conn_ingest import ingest_paths
from synack.inventory.daily_report import build_report
from synack.inventory.report_files import report_json, write_report
from synack.samples.generate import OUT, PLANTED

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    ingest_paths([OUT], root / "store")
    write_report(build_report(root / "store", PLANTED["last_day"]), root / "out")
    return root / "out"


def test_files_are_named_from_the_date(report_dir: Path) -> None:
    names = sorted(p.name for p in report_dir.iterdir())
    assert "report-2026-11-21.html" in names and "report-2026-11-21.json" in names
    assert "report-2026-11-21-new-servers.csv" in names
    assert all(n.startswith("report-2026-11-21") for n in names)


def test_headline_and_sections(report_dir: Path) -> None:
    doc = json.loads((report_dir / "report-2026-11-21.json").read_text())
    assert doc["headline"]["new server ports"]["value"] == 1
    assert doc["headline"]["ports closed but probed"]["value"] == 2
    assert doc["headline"]["hosts serving"]["previous_average"] > 0
    assert [r["server_p"] for r in doc["new_servers"]] == [8443]
    # What explains it: the first three clients, earliest first, and its connections that day.
    assert doc["new_servers"][0]["first_clients"] == "10.1.0.102, 10.1.0.104, 10.1.0.103"
    assert doc["new_servers"][0]["connections"] == 9
    assert len(doc["new_server_ports_per_day"]) == 30 and doc["new_server_ports_per_day"]["2026-11-21"] == 1
    page = (report_dir / "report-2026-11-21.html").read_text()
    order = [page.index(t) for t in ("New server ports", "New client ports", "Gone server ports",
                                     "Top server ports by clients", "Closed ports most probed", "per day",
                                     "Servers per service", "Allowlist")]  # fmt: skip
    assert order == sorted(order)
    assert page.count('class="none">none</p>') >= 1  # no gone server ports on that day


def test_the_streamed_json_is_the_report_as_one_document(tmp_path: Path) -> None:
    """The report's JSON, written a table row at a time column-wise (export.write_json_rows), parses to
    report_json's document built value by value (export.records), hostile banner included."""
    ingest_paths([OUT], tmp_path / "store")
    report = build_report(tmp_path / "store", PLANTED["last_day"])
    write_report(report, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "report-2026-11-21.json").read_text())
    assert written == json.loads(json.dumps(report_json(report), ensure_ascii=False))
    assert sum(len(written[name]) for name in report.tables) > 3


def test_hostile_banner_is_text_not_markup(report_dir: Path) -> None:
    page = (report_dir / "report-2026-11-21.html").read_text()
    assert "<script>\\x" not in page and "</script>\\x" not in page
    assert page.count("<script>") == 1  # the page's own sorting script, nothing from the logs
    assert "&lt;script&gt;\\x5cx41&lt;/script&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_csv_cells_are_neutralized(report_dir: Path) -> None:
    with open(report_dir / "report-2026-11-21-new-servers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["server_reply"].startswith("HTTP/1.1 400")
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@", "\t")) for v in row.values())


def test_report_of_an_empty_range_says_none(tmp_path: Path, report_dir: Path) -> None:
    store = report_dir.parent / "store"
    written = write_report(build_report(store, "2026-10-01"), tmp_path)
    page = written[0].read_text()
    assert page.count('class="none">none</p>') >= 5


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]  # fmt: skip


def test_report_in_a_real_browser(report_dir: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    page = report_dir / "report-2026-11-21.html"
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "synack daily report" in html and "10.1.0.11" in html and "8443/tcp" in html
    assert "data-sort" in html  # the sorting script ran and marked the headers
    assert "&lt;script&gt;\\x5cx41&lt;/script&gt;" in html  # the hostile banner stayed text in the DOM
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert console_errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-2026-11-21.png"
    result = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1200,2200",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and shot.stat().st_size > 10_000


DAY0 = 1794960000.0  # 2026-11-18 00:00 UTC


def _store_of(tmp_path: Path, lines_by_sensor: dict[str, list[str]]) -> Path:
    """A store holding each sensor's lines (tests.conftest.conn_line), ingested with its sensor name."""
    from tests.conftest import conn_header, write_log

    store = tmp_path / "store"
    for sensor, lines in lines_by_sensor.items():
        log = write_log(tmp_path / "logs" / sensor / "conn.log", conn_header() + "".join(lines))
        ingest_paths([log], store, sensor=sensor)
    return store


def _line(uid: str, day: int, hour: float = 12, port: int = 80, server: str = "10.0.0.2") -> str:
    from tests.conftest import conn_line

    return conn_line(uid, ts=DAY0 + day * 86400 + hour * 3600, resp=server, resp_p=port)


def test_a_stalled_sensor_is_named_first_on_the_page_and_the_command_fails(tmp_path: Path) -> None:
    from tests.conftest import run_synack

    store = _store_of(tmp_path, {
        "edge": [_line(f"E{d}", d) for d in range(4)],
        "core": [_line(f"C{d}", d, hour=20, server="10.0.0.3") for d in range(3)],
    })  # fmt: skip
    report = build_report(store, "2026-11-21")
    assert [s.sensor for s in report.health.silent] == ["core"] and report.health.records == 1
    assert report.health.silent[0].last_record is not None and report.health.silent[0].last_record.day == 20
    (tmp_path / "out").mkdir()
    run = run_synack("report", "--store", str(store), "--date", "2026-11-21", "-o", str(tmp_path / "out"))
    assert run.returncode == 1 and "sensor core sent no records" in run.stdout and "2026-11-20 20:00" in run.stdout
    assert len(run.stdout.splitlines()) == 2  # the summary and the files written: one line each
    page = (tmp_path / "out" / "report-2026-11-21.html").read_text()
    assert page.index('id="health"') < page.index("<h1>")
    doc = json.loads((tmp_path / "out" / "report-2026-11-21.json").read_text())
    assert doc["schema"] == "synack.report/2" and doc["health"]["ok"] is False
    assert [s["records"] for s in doc["health"]["sensors"]] == [0, 1]  # core, edge
    assert build_report(store, "2026-11-20").health.ok  # both sent data the day before
    expected = build_report(store, "2026-11-20", expect_sensors=["dmz"])
    assert [s.sensor for s in expected.health.silent] == ["dmz"]


def test_a_day_without_records_says_no_data_and_days_without_data_are_not_averaged(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {"edge": [_line("A", 0), _line("B", 2, port=22), _line("C", 4, port=443)]})
    empty = build_report(store, "2026-11-24")
    assert empty.health.records == 0 and not empty.health.ok
    (problem,) = empty.health.problems(empty.end)
    assert problem.startswith("no data") and "2026-11-22 12:00" in problem and "2.5 days" in problem
    page = write_report(empty, tmp_path / "out")[0].read_text()
    assert "No data: no records in this period" in page
    day4 = build_report(store, "2026-11-22")
    assert day4.compared == 1  # of the 7 days before, only 11-18 and 11-20 had records, and 11-18 is the baseline
    assert day4.headline["new server ports"] == (1, 1.0)  # not 2/7 = 0.29
    assert [v for _, v in day4.new_per_day[-5:]] == [1, None, 1, None, 1]  # gaps, not zeros


def test_the_first_day_of_a_store_is_its_baseline(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {"edge": [_line("A", 0), _line("B", 0, port=22), _line("C", 1, port=443)]})
    first = build_report(store, "2026-11-18")
    assert first.health.baseline and first.compared == 0
    page = write_report(first, tmp_path / "out")[0].read_text()
    assert "baseline" in page and "average" not in page.split("<h2>")[0]
    assert not build_report(store, "2026-11-19").health.baseline


def test_a_gone_port_is_reported_once_in_the_period_it_crosses_the_threshold(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {"edge": [_line("A", 0, port=8080)] + [_line(f"B{d}", d) for d in range(5)]})
    gone = {day: build_report(store, day, idle_days=1).tables["gone_servers"] for day in
            ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21")}  # fmt: skip
    assert [list(df["server_p"]) for df in gone.values()] == [[], [8080], [], []]


def test_tables_on_the_page_are_capped_and_point_at_the_csv(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {"edge": [_line(f"P{p}", 1, port=1000 + p) for p in range(60)] + [_line("X", 0)]})
    written = write_report(build_report(store, "2026-11-19", max_rows=10), tmp_path / "out")
    page = written[0].read_text()
    assert "50 more in report-2026-11-19-new-servers.csv" in page
    assert page.count("1000/tcp") + page.count("/tcp</td>") < 60
    with open(tmp_path / "out" / "report-2026-11-19-new-servers.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 60


def test_the_no_data_banner_is_visible_at_the_top_in_a_real_browser(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    store = _store_of(tmp_path, {"edge": [_line("A", 0)]})
    page = write_report(build_report(store, "2026-11-25"), tmp_path / "out")[0]
    probe = tmp_path / "probe.html"
    measure = (
        "<script>addEventListener('load', () => { const r = document.getElementById('health')"
        ".getBoundingClientRect(); const s = getComputedStyle(document.getElementById('health'));"
        " document.title = `top=${r.top} height=${r.height} visible=${s.display !== 'none' && "
        "s.visibility === 'visible'}`; });</script></body>"
    )
    probe.write_text(page.read_text().replace("</body>", measure))
    dom = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
         "--virtual-time-budget=2000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    title = dom.stdout.split("<title>")[1].split("</title>")[0]
    top, height, visible = (part.split("=")[1] for part in title.split())
    assert float(top) < 50 and float(height) > 20 and visible == "true", title
    assert "No data" in dom.stdout.split('id="health"')[1][:300]


def test_the_chart_marks_the_first_day_of_data_as_the_baseline(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {"edge": [_line("A", 0), _line("B", 0, port=22), _line("C", 2, port=443)]})
    report = build_report(store, "2026-11-20")
    assert report.baseline_day == "2026-11-18"
    page = write_report(report, tmp_path / "out")[0].read_text()
    chart = page.split('aria-label="new server ports per day"')[1].split("</svg>")[0]
    assert "2026-11-18: 2 ports seen on the first day of data (the baseline)" in chart and ">baseline</text>" in chart
    assert "2026-11-19: no data" in chart and "2026-11-20: 1</title>" in chart


def test_a_port_whose_sensor_stalled_is_not_gone_until_its_sensor_sends_again(tmp_path: Path) -> None:
    # core carries port 8080 on day 0, then sends nothing on days 1-3, then data again on days 4-5.
    store = _store_of(tmp_path, {
        "edge": [_line(f"E{d}", d) for d in range(6)],
        "core": [_line("C0", 0, port=8080, server="10.0.0.3"), _line("C4", 4, server="10.0.0.4"),
                 _line("C5", 5, server="10.0.0.4")],
    })  # fmt: skip
    gone = {f"2026-11-{18 + d}": list(build_report(store, f"2026-11-{18 + d}", idle_days=2).tables["gone_servers"]
                                       ["server_p"]) for d in range(7)}  # fmt: skip
    # By the wall clock 8080 is two days idle on day 2; its sensor's idle time starts again on day 4.
    assert gone == {"2026-11-18": [], "2026-11-19": [], "2026-11-20": [], "2026-11-21": [], "2026-11-22": [],
                    "2026-11-23": [8080], "2026-11-24": []}  # fmt: skip


def test_the_page_of_a_large_day_stays_small(tmp_path: Path) -> None:
    ports = [_line(f"P{p}", 1, port=1000 + p % 3000, server=f"10.0.{p // 3000}.{2 + p % 200}") for p in range(6000)]
    store = _store_of(tmp_path, {"edge": ports + [_line("X", 0)]})
    report = build_report(store, "2026-11-19", nets="all")
    assert len(report.tables["new_servers"]) == 6000
    page = write_report(report, tmp_path / "out")[0]
    assert page.stat().st_size < 150_000  # 50 rows a table, whatever the day holds
    assert "5950 more in report-2026-11-19-new-servers.csv" in page.read_text()


def test_a_sensors_first_day_is_its_baseline_and_the_lag_is_shown(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {
        "edge": [_line(f"E{d}", d) for d in range(3)],
        "dmz": [_line("D2", 2, hour=6, port=25, server="10.0.0.9")],
    })  # fmt: skip
    report = build_report(store, "2026-11-20")
    assert report.health.new_sensors == ["dmz"] and not report.health.baseline
    assert build_report(store, "2026-11-19").health.new_sensors == []
    page = write_report(report, tmp_path / "out")[0].read_text()
    assert "first data from sensor dmz" in page
    assert "newest record 2026-11-20 12:00 UTC (12.0 h before the period&#x27;s end)" in page


def test_the_gone_headline_counts_the_gone_table(tmp_path: Path) -> None:
    store = _store_of(tmp_path, {"edge": [_line("A", 0, port=8080)] + [_line(f"B{d}", d) for d in range(5)]})
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        report = build_report(store, day, idle_days=1)
        assert report.headline["gone server ports"][0] == len(report.tables["gone_servers"]), day
    assert build_report(store, "2026-11-19", idle_days=1).headline["gone server ports"][0] == 1


def test_a_host_that_answers_every_port_is_one_row_a_status_line_and_its_ports_in_the_csv(tmp_path: Path) -> None:
    """A tarpit answers a SYN on every port: 300 new ports of one host are one
    row of the page's new-port table (the CSV has them all), flagged in
    `servers`, `new-ports` and `status`; a host under the threshold is not."""
    from typer.testing import CliRunner

    from synack.cli import app
    from synack.inventory import Inventory
    from tests.conftest import conn_header, conn_line

    base = 1795046400.0 - 2 * 86400  # 2026-11-17 00:00 UTC
    lines = [conn_line("B1", ts=base - 86400 + 5, resp="10.6.0.2", resp_p=22)]  # a baseline day
    lines += [conn_line(f"T{p}", ts=base + p, resp="10.6.0.1", resp_p=1000 + p, history="ShAFf") for p in range(300)]
    lines += [conn_line(f"N{p}", ts=base + 400 + p, resp="10.6.0.3", resp_p=8000 + p) for p in range(3)]
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines))
    store = tmp_path / "store"
    ingest_paths([log], store)

    inv = Inventory(store, as_of="2026-11-18")
    hosts = inv.hosts_answering_all("2026-11-17", "2026-11-18")
    assert hosts[["server_h", "ports", "quiet_ports", "lowest_port", "highest_port"]].values.tolist() == [
        ["10.6.0.1", 300, 300, 1000, 1299]
    ]
    servers = inv.servers("2026-11-17", "2026-11-18")
    assert set(servers.loc[servers["answers_all"], "server_h"]) == {"10.6.0.1"}
    new = inv.new_servers("2026-11-17", "2026-11-18")
    assert len(new) == 303 and new["answers_all"].sum() == 300
    assert Inventory(store, as_of="2026-11-18", answers_all_ports=301).hosts_answering_all("2026-11-17").empty

    report = build_report(store, "2026-11-17", as_of="2026-11-18")
    written = write_report(report, tmp_path / "out")
    page = written[0].read_text()
    assert page.count("answers every port") >= 2  # the line above the table and the collapsed row
    assert "300 TCP ports (1000 up): answers every port" in page
    section = page[page.index("<h2>New server ports</h2>") : page.index("<h2>New client ports</h2>")]
    assert section.count("<td>10.6.0.1</td>") == 1 and section.count("<td>10.6.0.3</td>") == 3  # one row
    with open(tmp_path / "out" / report.csv_name("new_servers")) as f:
        assert sum(1 for row in csv.DictReader(f) if row["server_h"] == "10.6.0.1") == 300

    status = CliRunner().invoke(app, ["status", "--store", str(store)])
    assert status.exit_code == 0 and "host 10.6.0.1 answered on 300 TCP ports on 2026-11-17" in status.stdout


def test_averages_leave_out_the_baseline_day_and_no_data_names_the_newest_record(tmp_path: Path) -> None:
    """The demo's bug: one new port on day 4 was "below the average (3.0)", the
    baseline day's 9 ports / 3. The first day is not a day of new ports."""
    lines = {"edge": [_line(f"B{p}", 0, port=1000 + p) for p in range(9)]  # the baseline: 9 ports
             + [_line("D1", 1, port=2000), _line("D2", 2, port=2001), _line("D3", 3, port=2002)]}  # fmt: skip
    store = _store_of(tmp_path, lines)
    report = build_report(store, "2026-11-21")
    value, average = report.headline["new server ports"]
    assert value == 1 and report.compared == 2 and average == 1.0  # days 2 and 3, not the baseline
    before = build_report(store, "2026-11-10")  # a day before any record
    problems = before.health.problems(before.end)
    assert problems and "none before it; the store's newest record: 2026-11-21" in problems[0]


def test_the_readme_screenshot_shows_the_columns_the_page_has(tmp_path: Path) -> None:
    """docs/make_screenshots.py writes the screenshots and the columns they
    show; a page whose sections or columns changed fails here until they are
    made again."""
    from synack.inventory.report_html import page_columns

    docs = Path(__file__).resolve().parents[1] / "docs"
    store = tmp_path / "store"
    ingest_paths([OUT], store)
    page = write_report(build_report(store, PLANTED["last_day"], as_of="2026-11-26"), tmp_path / "out")[0]
    assert page_columns(page.read_text()) == (docs / "report-columns.txt").read_text(), (
        "the report page's columns changed: run python docs/make_screenshots.py"
    )


def test_a_report_cell_is_capped_whatever_the_value() -> None:
    from synack.inventory import report_html

    services = ",".join(f"svc{i:05d}" for i in range(20_000))  # 20k names: 160k characters
    df = pd.DataFrame({"server_h": ["10.1.0.5"], "proto": ["tcp"], "server_p": [80], "services": [services],
                       "server_reply": [b"<script>" * 10_000]})  # fmt: skip
    page = report_html._table(df, 10, "new_servers.csv")
    assert len(page) < 4 * report_html.CELL_CHARS + 1000
    assert f"{len(services) - report_html.CELL_CHARS:,} more characters in the CSV" in page
    assert "<script>" not in page  # still escaped after the cut


def test_data_health_per_sensor_matches_its_definition_at_any_number_of_sensors() -> None:
    """Each expected sensor's records in the period and newest record before its end, as defined (a
    direct sum over the ledger's rows), for random rows; and 100,000 sensors answer at once (the check
    was quadratic in sensors: 100,000 took more than 14 minutes)."""
    import datetime as dt
    import random

    from synack.inventory.daily_report import _health

    rng = random.Random(7)
    start, end = dt.datetime(2026, 11, 21, tzinfo=dt.UTC), dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    rows = [(f"2026-11-{d:02d}", f"s{rng.randrange(40)}", rng.choice([0, 5, 10]),
             int(dt.datetime(2026, 11, d, rng.randrange(24), tzinfo=dt.UTC).timestamp() * 1e6))
            for d in range(10, 25) for _ in range(30)]  # fmt: skip
    for sensors in (None, ["s1", "s2", "s39"]):
        health, _ = _health(rows, start, end, sensors, ["never-seen"])
        kept = [r for r in rows if sensors is None or r[1] in sensors]
        for s in health.sensors:
            mine = [r for r in kept if r[1] == s.sensor]
            day = lambda r: dt.datetime.fromisoformat(r[0]).replace(tzinfo=dt.UTC)  # noqa: E731
            assert s.records == sum(r[2] for r in mine if start - dt.timedelta(days=1) < day(r) < end)
            times = [r[3] for r in mine if day(r) < end]
            want = min(dt.datetime.fromtimestamp(max(times) / 1e6, dt.UTC), end) if times else None
            assert s.last_record == want
        assert "never-seen" in [s.sensor for s in health.sensors]
    many = [("2026-11-20", f"sensor-{i}", 1, int(start.timestamp() * 1e6) - i) for i in range(100_000)]
    health, _ = _health(many + [("2026-11-21", "sensor-5", 3, int(start.timestamp() * 1e6) + 9)], start, end, None, [])
    assert len(health.sensors) == 100_000 and len(health.silent) == 99_999
    assert next(s for s in health.sensors if s.sensor == "sensor-5").records == 3


def test_the_headline_averages_the_new_ports_of_each_earlier_day(tmp_path: Path) -> None:
    """The earlier days' new server and client ports, counted in one pass
    over the days together and told apart by first_seen, average what
    new_servers and new_clients give day by day."""
    import random

    from synack.inventory import Inventory
    from tests.conftest import conn_header, conn_line

    rng = random.Random(8)
    start = 1795046400.0  # 2026-11-19 00:00 UTC
    logs = []
    for day in range(7):
        lines = [conn_line(f"C{day}x{i}", ts=start + day * 86400 + i * 7, orig=f"10.0.0.{rng.randrange(30)}",
                           resp=f"10.1.0.{rng.randrange(20)}", resp_p=rng.choice([22, 80, 443] + [8000 + day] * 2))
                 for i in range(120)]  # fmt: skip
        logs.append(tmp_path / f"conn{day}.log")
        logs[-1].write_text(conn_header() + "".join(lines))
    store = tmp_path / "store"
    ingest_paths(logs, store)
    report = build_report(store, "2026-11-25", nets="all")
    inv = Inventory(store, nets="all")
    days = [f"2026-11-{d}" for d in range(20, 25)]  # the first day is every port's first: left out
    for figure, question in (("new server ports", inv.new_servers), ("new client ports", inv.new_clients)):
        counts = [len(question(d, pd.Timestamp(d) + pd.Timedelta(days=1))) for d in days]
        assert sum(counts) > len(days)
        assert report.headline[figure][1] == pytest.approx(sum(counts) / len(counts)), figure


@pytest.mark.parametrize("settings", [{}, {"nets": "all", "strict": True}, {"sensors": "edge-1", "nets": "all"},
                                      {"nets": "all", "allow": "allow"}])  # fmt: skip
def test_new_client_times_are_the_first_uses_of_new_clients(tmp_path: Path, settings: dict,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The report counts the earlier days' new client ports from their
    first uses alone (Inventory.new_client_times): the same times as the
    rows of new_clients, whatever the networks, sensors, strictness and
    allowlist, IPv6 clients included, reduced as they are read."""
    import random

    from synack.inventory import Inventory, client_ports
    from tests.conftest import conn_header, conn_line, peer_of

    monkeypatch.setattr(client_ports, "STREAM_ROWS", 7 if settings else client_ports.STREAM_ROWS)
    monkeypatch.setattr(client_ports, "MERGE_ROWS", 3 if settings else client_ports.MERGE_ROWS)

    rng = random.Random(len(settings))
    start = 1795046400.0  # 2026-11-19 00:00 UTC
    hosts = [f"10.0.0.{i}" for i in range(12)] + [f"8.8.4.{i}" for i in range(4)] + ["fd00::1", "fd00::2"]
    store = tmp_path / "store"
    for sensor in ("edge-1", "edge-2"):
        lines = [conn_line(f"C{sensor}{i}", ts=start + i * 1800 + rng.random(), orig=(o := rng.choice(hosts)),
                           resp=peer_of(rng, hosts, o), resp_p=rng.choice([22, 80, 443, 8080, 9000 + i % 3]),
                           history=rng.choice(["ShADadFf", "ShADadFf", "ADadFf", "Sr"]))
                 for i in range(300)]  # fmt: skip
        log = tmp_path / f"{sensor}.log"
        log.write_text(conn_header() + "".join(lines))
        ingest_paths([log], store, sensor=sensor)
    if "allow" in settings:
        allow = tmp_path / "allow.txt"
        allow.write_text("10.0.0.0/29 tcp 22\n10.0.0.5 tcp 1-65535\n")
        settings = {**settings, "allow": allow}
    inv = Inventory(store, **settings)
    suppressed = 0
    for since, until in (
        ("2026-11-20", "2026-11-22"),
        ("2026-11-19", "2026-11-26"),
        ("2026-11-24", None),
        (None, "2026-11-21"),
    ):
        rows = inv.new_clients(since, until)
        want = np.sort(rows["first_seen"].to_numpy(dtype="datetime64[us]").astype(np.int64))
        got = inv.new_client_times(since, until)
        assert len(want) > 3 and got.tolist() == want.tolist(), (since, until)
        suppressed += len(inv.new_clients(since, until, show_allowed=True)) - len(rows)
    assert (suppressed > 0) == ("allow" in settings)  # the allowlist left some out, and only it


def test_kept_new_client_ports_answer_the_ranges_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Inventory that keeps the new client ports of eight days (as the report does) answers
    new_clients and new_client_times of each day inside them as one that reads each day's,
    without telling them new again; a range outside them is read as before."""
    from synack.inventory import Inventory, client_ports
    from tests.conftest import conn_header, conn_line

    start = 1795046400.0  # 2026-11-19 00:00 UTC
    lines = [conn_line(f"C{i}", ts=start + i * 2400, orig=f"10.0.{i % 3}.{i % 17}", resp=f"10.1.0.{i % 5}",
                       resp_p=[22, 80, 443, 8000 + i % 40][i % 4]) for i in range(300)]  # fmt: skip
    log = tmp_path / "conn.log"
    log.write_text(conn_header() + "".join(lines))
    store = tmp_path / "store"
    ingest_paths([log], store)
    plain = Inventory(store, nets="all")
    days = [(f"2026-11-{d}", f"2026-11-{d + 1}") for d in range(19, 27)]
    want = {day: (plain.new_clients(*day), plain.new_client_times(*day)) for day in days}
    kept = Inventory(store, nets="all")
    kept.keep_new_client_ports("2026-11-19", "2026-11-27")
    told: list[int] = []
    real = client_ports.new_ports
    monkeypatch.setattr(client_ports, "new_ports", lambda *a, **k: told.append(1) or real(*a, **k))
    for day in days:
        pd.testing.assert_frame_equal(kept.new_clients(*day), want[day][0])
        assert kept.new_client_times(*day).tolist() == want[day][1].tolist()
    assert told == [] and sum(len(rows) for rows, _ in want.values()) > 20
    assert len(kept.new_clients("2026-11-18", "2026-11-20")) == len(want[days[0]][0]) and told == [1]


def test_a_report_of_decades_compares_no_period_before_the_dates_synack_handles(tmp_path: Path) -> None:
    """A report of a long range (decades, through --since and --until) is made: its earlier
    periods would begin before 1970, and none is compared (a first version of the kept new
    client ports asked for all seven and failed with "outside the dates synack handles")."""
    store = _store_of(tmp_path, {"edge": [_line(f"C{d}", d, port=80 + d) for d in range(3)]})
    report = build_report(store, since="1990-01-01", until="2030-01-01", nets="all")
    assert report.compared == 0 and report.headline["new client ports"] == (3, None)
