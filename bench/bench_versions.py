"""Two versions of synack on the same kept store, their runs interleaved.

    python bench/bench_versions.py --store /tmp/year/store --before 0e0fc65 [--after HEAD] [--repeat 3]

The read side's questions (bench_read_side) as whole processes, each run
by the `--before` and `--after` revisions of this repository in turn, so
both meet the same machine: this 2-vCPU machine's speed drifts by up to
40% within minutes, which makes two runs of bench_read_side minutes
apart useless for changes of 20%. Each revision is exported (git archive)
to a temporary directory and put first on PYTHONPATH; the script checks
that the process imports synack from there. Prints each question's best
and median seconds, peak memory, and the ratio after / before of the
best. The store is only read (a store of an older synack is answered as
it is: bring it up to date with bench_read_side first).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_read_side import DAY0, MB  # noqa: E402


def questions(store: Path, days: int, out: Path) -> dict[str, list[str]]:
    """The read side's questions over the kept store (its newest day is day `days` - 1)."""
    newest = time.strftime("%Y-%m-%d", time.gmtime(DAY0 + (days - 1) * 86400))
    month_ago = time.strftime("%Y-%m-%d", time.gmtime(DAY0 + (days - 30) * 86400))
    s, csv = ["--store", str(store)], ["-f", "csv", "-o", str(out / "answer.csv")]
    return {
        "servers": ["servers", *s, *csv],
        "new-ports": ["new-ports", "--since", month_ago, *s, *csv],
        "gone-ports": ["gone-ports", "--as-of", "newest", *s, *csv],
        "clients": ["clients", *s, *csv],
        "new-ports --clients": ["new-ports", "--clients", "--since", month_ago, *s, *csv],
        "host": ["host", "10.1.0.5", *s, "-f", "json", "-o", str(out / "answer.json")],
        "report": ["report", "--date", newest, *s, "-o", str(out)],
        "servers --nets all": ["servers", "--nets", "all", *s, *csv],
    }


def exported(revision: str, into: Path) -> Path:
    """The tree of `revision` as a package directory `synack` under `into`; `into` (for PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", revision], check=True,
                             capture_output=True).stdout  # fmt: skip
    target = into / "synack"
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    env = {**os.environ, "PYTHONPATH": str(into)}
    found = subprocess.run([sys.executable, "-c", "import synack; print(synack.__file__)"], check=True,
                           capture_output=True, text=True, env=env).stdout  # fmt: skip
    if not found.strip().startswith(str(target)):
        raise SystemExit(f"{revision}: the process imports synack from {found.strip()}, not {target}")
    return into


def run(root: Path, args: list[str]) -> tuple[float, float]:
    """(seconds, peak MB) of one whole `synack` process importing synack from `root`."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "synack", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"synack {' '.join(args)} failed under {root}: {proc.stderr.read().decode()[-300:]}")
    return elapsed, usage.ru_maxrss / MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--days", type=int, default=365, help="days of the kept store (bench_read_side's --days)")
    parser.add_argument("--before", required=True, help="a git revision")
    parser.add_argument("--after", default="HEAD", help="a git revision (default HEAD)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated questions (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synack-versions-") as work:
        roots = {name: exported(rev, Path(work) / name) for name, rev in (("before", args.before),
                                                                          ("after", args.after))}  # fmt: skip
        out = Path(work) / "answers"
        out.mkdir()
        asked = questions(args.store, args.days, out)
        for name in args.only.split(",") if args.only else asked:
            runs: dict[str, list[tuple[float, float]]] = {version: [] for version in roots}
            for _ in range(args.repeat):
                for version, root in roots.items():
                    runs[version].append(run(root, asked[name]))
            cells = []
            for version, done in runs.items():
                seconds = [s for s, _ in done]
                cells.append(f"{version} {min(seconds):6.2f} s (median {statistics.median(seconds):.2f}) "
                             f"{max(m for _, m in done):5.0f} MB")  # fmt: skip
            ratio = min(s for s, _ in runs["after"]) / min(s for s, _ in runs["before"])
            print(f"{name:22} {'   '.join(cells)}   after/before {ratio:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
