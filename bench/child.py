"""Running one measurement in a child process, with its own peak memory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_measured(args: list[str], label: str) -> dict[str, Any]:
    """Run `python ARGS... OUTDIR` (OUTDIR a fresh temporary directory, removed
    after); return the JSON object it prints last.

    The child reports its own peak (`peak_mb`, from VmHWM: wait4's maxrss
    would also count the parent's memory at fork time).
    """
    out = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    try:
        proc = subprocess.Popen([sys.executable, *args, str(out / "store")], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT)  # fmt: skip
        assert proc.stdout is not None
        output = proc.stdout.read()
        if proc.wait() != 0:
            raise SystemExit(f"{label} failed with status {proc.returncode}")
        result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def peak_mb() -> float:
    """This process's peak resident memory in MB (VmHWM), for children to report."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
