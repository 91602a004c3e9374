"""What the Zeek package costs Zeek: CPU time and peak memory, with and without it.

    python bench/bench_zeek_package.py                  # 20,000 generated connections
    python bench/bench_zeek_package.py --connections 5000

Needs a real Zeek (on PATH, or ../shared/zeek/bin) and scapy. Every figure is a
whole `zeek -C -r` process (user + system CPU and peak RSS from wait4),
the best of --repeat runs, against stock Zeek measured in the same run, on:

* the reference corpus's captures (../shared/zeek-corpus, one Zeek per capture, summed);
* a generated capture of many short connections with a 300 B client request;
* the same with a 2,000 B client request (the talkative clients the raised
  dpd_buffer_size is for: more is buffered and matched per connection).

Variants: stock Zeek; with the package (its defaults: dpd_buffer_size 4096);
with the package and `redef dpd_buffer_size = 1024` (the package alone,
Zeek's own buffer); with the package and `redef dpd_match_only_beginning = F`
(the documented setting for replies after 64 KB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGE = ROOT / "zeek_scripts"
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(PACKAGE / "testing" / "traces"))

VARIANTS: dict[str, list[str]] = {
    "stock Zeek": [],
    "package (defaults)": [str(PACKAGE)],
    "package, dpd_buffer_size 1024": [str(PACKAGE), "-e", "redef dpd_buffer_size = 1024;"],
    "package, match after buffer (64 KB)": [str(PACKAGE), "-e", "redef dpd_match_only_beginning = F;"],
}


def zeek_env() -> dict[str, str]:
    env = dict(os.environ)
    if shutil.which("zeek") is None and (SHARED / "zeek" / "bin").is_dir():
        env["PATH"] = f"{SHARED / 'zeek' / 'bin'}{os.pathsep}{env['PATH']}"
    if shutil.which("zeek", path=env["PATH"]) is None:
        sys.exit("bench_zeek_package: no zeek on PATH and no ../shared/zeek")
    return env


def run_once(pcaps: list[Path], args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds summed over one Zeek per capture, the largest peak RSS in MB)."""
    cpu, peak = 0.0, 0.0
    with tempfile.TemporaryDirectory() as workdir:
        for pcap in pcaps:
            proc = subprocess.Popen(
                ["zeek", "-C", "-r", str(pcap), *args], cwd=workdir, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                sys.exit(f"zeek failed on {pcap} with {args}")
            cpu += usage.ru_utime + usage.ru_stime
            peak = max(peak, usage.ru_maxrss / 1024)
    return cpu, peak


def generated(folder: Path, connections: int, request: int) -> Path:
    """A cached capture of `connections` short connections with `request`-byte client requests."""
    from make_traces import many_connections
    from scapy.utils import PcapWriter

    path = folder / f"zeek-many-{connections}-{request}.pcap"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with PcapWriter(str(tmp), sync=False) as out:
            for packet in many_connections(connections, request):
                out.write(packet)
        tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    env = zeek_env()
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    inputs: dict[str, list[Path]] = {}
    corpus = sorted(p for p in (SHARED / "zeek-corpus").glob("*/*") if p.suffix in (".pcap", ".pcapng"))
    if corpus:
        inputs[f"corpus ({len(corpus)} captures)"] = corpus
    for request in (300, 2_000):
        inputs[f"{options.connections} connections, {request} B requests"] = [
            generated(data, options.connections, request)
        ]
    for name, pcaps in inputs.items():
        print(f"\n{name}")
        print(f"  {'variant':38} {'CPU s':>8} {'ratio':>7} {'peak MB':>8} {'ratio':>7}")
        base: tuple[float, float] | None = None
        for variant, args in VARIANTS.items():
            runs = [run_once(pcaps, args, env) for _ in range(options.repeat)]
            cpu, peak = min(r[0] for r in runs), min(r[1] for r in runs)
            base = base or (cpu, peak)
            print(f"  {variant:38} {cpu:8.2f} {cpu / base[0]:6.2f}x {peak:8.1f} {peak / base[1]:6.2f}x")


if __name__ == "__main__":
    main()
