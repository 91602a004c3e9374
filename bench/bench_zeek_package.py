"""What the Zeek package costs Zeek: CPU time and peak memory, with and without it.

    python bench/bench_zeek_package.py                  # 20,000 generated connections
    python bench/bench_zeek_package.py --connections 5000

Needs a real Zeek (on PATH, or ../shared/zeek/bin) and scapy. Every figure is a
whole `zeek -C -r` process (user + system CPU and peak RSS from wait4),
the best of --repeat rounds (variants interleaved), against stock Zeek measured in the same run, on:

* the reference corpus's captures (../shared/zeek-corpus, one Zeek per capture, summed);
* a generated capture of many short connections with a 300 B client request;
* the same with a 2,000 B client request (the talkative clients the raised
  dpd_buffer_size is for: more is buffered and matched per connection).

With --instructions, each figure is instead the number of instructions Zeek
executes per connection (valgrind's callgrind; the same on any machine and
under any load), start-up subtracted (a run on a one-connection capture),
on a smaller generated capture (--connections defaults to 2,000 there).

Variants: stock Zeek; with the package (its defaults: dpd_buffer_size 4096);
with the package and `redef dpd_buffer_size = 1024` (the package alone,
Zeek's own buffer); with the package and `redef dpd_match_only_beginning = F`
(the documented setting for replies after 64 KB); with the package and
notice.zeek, with a baseline that knows none of the generated servers (each
of their ports raises a notice) and with one that knows them all.
"""

from __future__ import annotations

import argparse
import os
import re
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
    # The sensor-side notices, with a baseline that knows none of the generated
    # servers: each of their 1,000 ports raises one notice (the most work it can do)...
    "package + notice.zeek, all new": [
        str(PACKAGE), str(PACKAGE / "scripts" / "notice.zeek"), "-e",
        f'redef SynAck::known_servers_file = "{PACKAGE / "testing" / "traces" / "known.tsv"}";',
    ],
    # ... and with one that knows them all (a sensor's usual day: lookups only).
    "package + notice.zeek, all known": [
        str(PACKAGE), str(PACKAGE / "scripts" / "notice.zeek"), "-e",
        f'redef SynAck::known_servers_file = "{HERE / "data" / "known-generated.tsv"}";',
    ],
}  # fmt: skip


def write_known_baseline(path: Path) -> None:
    """A baseline (as synack export-known writes it) knowing every server port of many_connections."""
    header = (PACKAGE / "testing" / "traces" / "known.tsv").read_text().split("10.1.0.1/32", 1)[0]
    rows = [f"10.2.{i // 50}.{i % 50 + 1}/32\ttcp\t{p}\t{p}\t1700000000.000000\tknown\n"
            for i in range(250) for p in (80, 443, 8080, 5432)]  # fmt: skip
    path.write_text(header + "".join(rows))


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


def instructions(pcap: Path, args: list[str], env: dict[str, str]) -> int:
    """Instructions one `zeek -C -r pcap` executes (callgrind, the zeek wrapper's children included)."""
    with tempfile.TemporaryDirectory() as workdir:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--trace-children=yes", "--callgrind-out-file=/dev/null",
             "zeek", "-C", "-r", str(pcap), *args],
            cwd=workdir, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    return sum(int(n.replace(",", "")) for n in re.findall(r"Collected : ([\d,]+)", run.stderr))


def instruction_table(data: Path, connections: int, env: dict[str, str]) -> None:
    """Print instructions per connection, start-up subtracted, per variant and request size."""
    startup_pcap = PACKAGE / "testing" / "traces" / "udp-late-answer.pcap"
    startup = {variant: instructions(startup_pcap, args, env) for variant, args in VARIANTS.items()}
    for request in (300, 2_000):
        pcap = generated(data, connections, request)
        print(f"\n{connections} connections, {request} B requests: instructions per connection (callgrind)")
        base = 0.0
        for variant, args in VARIANTS.items():
            per = (instructions(pcap, args, env) - startup[variant]) / connections
            base = base or per
            print(f"  {variant:38} {per:12,.0f} {per / base:6.2f}x")
    print("\nstart-up (one tiny capture): " + ", ".join(f"{v}: {n / 1e9:.2f} G" for v, n in startup.items()))


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
    parser.add_argument("--instructions", action="store_true", help="count instructions with valgrind instead")
    options = parser.parse_args()
    env = zeek_env()
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    write_known_baseline(data / "known-generated.tsv")
    if options.instructions:
        if shutil.which("valgrind") is None:
            sys.exit("bench_zeek_package: --instructions needs valgrind")
        instruction_table(data, options.connections if options.connections != 20_000 else 2_000, env)
        return
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
        # Variants interleaved, round after round, so a slower moment of the
        # machine touches them all alike; the best round of each counts.
        runs: dict[str, list[tuple[float, float]]] = {variant: [] for variant in VARIANTS}
        for _round in range(options.repeat):
            for variant, args in VARIANTS.items():
                runs[variant].append(run_once(pcaps, args, env))
        base = min(r[0] for r in runs["stock Zeek"]), min(r[1] for r in runs["stock Zeek"])
        for variant, measured in runs.items():
            cpu, peak = min(r[0] for r in measured), min(r[1] for r in measured)
            print(f"  {variant:38} {cpu:8.2f} {cpu / base[0]:6.2f}x {peak:8.1f} {peak / base[1]:6.2f}x")


if __name__ == "__main__":
    main()
