"""Running one measurement in a child process, with its own peak memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_measured(args: list[str], label: str) -> dict[str, Any]:
    """Run `python ARGS... OUTDIR` (OUTDIR a fresh temporary directory, removed
    after); return the JSON object it prints last, plus `peak_mb`."""
    out = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    try:
        proc = subprocess.Popen([sys.executable, *args, str(out / "store")], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT)  # fmt: skip
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"{label} failed with status {status}")
        result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        result["peak_mb"] = usage.ru_maxrss / 1024
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)
