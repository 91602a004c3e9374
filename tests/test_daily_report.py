"""The daily report: content, hostile data, files, and a real browser."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.conn_ingest import ingest_paths
from inventory.daily_report import build_report, write_report
from samples.generate import OUT, PLANTED

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
    assert doc["headline"]["hosts serving"]["previous_7_average"] > 0
    assert [r["server_p"] for r in doc["new_servers"]] == [8443]
    assert len(doc["new_server_ports_per_day"]) == 30 and doc["new_server_ports_per_day"]["2026-11-21"] == 1
    page = (report_dir / "report-2026-11-21.html").read_text()
    order = [page.index(t) for t in ("New server ports", "New client ports", "Gone server ports",
                                     "Top server ports by clients", "Closed ports most probed", "per day",
                                     "Servers per service", "Allowlist")]  # fmt: skip
    assert order == sorted(order)
    assert page.count('class="none">none</p>') >= 1  # no gone server ports on that day


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
