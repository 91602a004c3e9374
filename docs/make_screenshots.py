"""Regenerate the report screenshots under docs/ from the bundled samples.

    python docs/make_screenshots.py

Writes docs/report-demo.png (the demo's last day) and docs/report-no-data.png
(a day after the samples end: the no-data banner), with headless Chromium,
and docs/report-columns.txt: the demo page's sections and columns, which a
test compares with the page the current code writes (a page whose columns
changed needs new screenshots).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from synack.ingest.conn_ingest import ingest_paths  # noqa: E402
from synack.inventory.daily_report import build_report  # noqa: E402
from synack.inventory.report_files import write_report  # noqa: E402
from synack.inventory.report_html import page_columns  # noqa: E402
from synack.samples.generate import OUT, PLANTED  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--hide-scrollbars", "--window-size=1200,2200"]  # fmt: skip


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("no chromium on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="synack-shots-") as tmp:
        store = Path(tmp) / "store"
        ingest_paths([OUT], store)
        for day, name in ((PLANTED["last_day"], "report-demo.png"), ("2026-11-25", "report-no-data.png")):
            page = write_report(build_report(store, day, as_of="2026-11-26"), Path(tmp) / "out")[0]
            if name == "report-demo.png":
                (DOCS / "report-columns.txt").write_text(page_columns(page.read_text()))
            shot = DOCS / name
            subprocess.run([browser, *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}", f"--screenshot={shot}",
                            page.as_uri()], check=True, capture_output=True, timeout=120)  # fmt: skip
            print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
