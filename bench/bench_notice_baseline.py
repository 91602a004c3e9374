"""notice.zeek at a big site's scale: a large baseline, many ranges, a host that answers every port.

    python bench/bench_notice_baseline.py              # 65,535 ports, 1,000,000 known ports, 10,000 ranges
    python bench/bench_notice_baseline.py --ports 5000 --known 200000

Needs a real Zeek (on PATH, or ../shared/zeek/bin) and scapy. Writes, in a
temporary folder: a capture of one local host answering a SYN on `--ports`
ports (make_traces.answers_everything: SYN, SYN-ACK, RST; no data) and
four baselines as `synack export-known` writes them: empty; `--ranges`
port ranges of other networks; `--known` exact server ports of other hosts
plus the same ranges, in the table; the same with the exact ports in a
Bloom filter (`export-known --filter`). Each is one whole `zeek -C -r` process with the
package and notice.zeek (wall time and peak RSS from wait4, best of
--repeat), against the same Zeek with the empty baseline, and counts the
notices: a host answering every port must raise a few New_Server_Port
notices and one Host_Answers_Everything, whatever the baseline. The range
checks go by network (a prefix tree) and by block of ports, so the ranges
baseline costs about what the empty one does; the exact ports in the table
cost an Input-framework row each (what --known's extra time and memory
are), in the filter about 29 bits each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "zeek_scripts"
sys.path.insert(0, str(PACKAGE / "testing" / "traces"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

import pandas as pd  # noqa: E402
from bench_zeek_package import zeek_env  # noqa: E402

from synack.inventory.known_filter import write_filter  # noqa: E402

HEADER = (PACKAGE / "testing" / "traces" / "known.tsv").read_text().split("10.1.0.1/32", 1)[0]


def _host(i: int) -> str:
    a = 0x0A800000 + i // 50
    return f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"


def write_baseline(path: Path, known: int, ranges: int, filter_path: Path | None = None) -> None:
    """`known` exact ports of hosts in 10.128/9 (50 ports a host; in a Bloom
    filter at `filter_path` if given) and `ranges` port ranges of 172.16/12 /24s."""
    if filter_path is not None:
        # In a child, as the capture: this process's peak would be Zeek's.
        subprocess.run([sys.executable, __file__, "--write-filter", str(filter_path), "--known", str(known)],
                       check=True)  # fmt: skip
        known = 0
    with open(path, "w") as f:
        f.write(HEADER)
        for i in range(known):
            f.write(f"{_host(i)}/32\ttcp\t{1000 + i % 50}\t{1000 + i % 50}\t1690000000.000000\tknown\n")
        for j in range(ranges):
            f.write(
                f"172.{16 + j % 16}.{j // 16 % 256}.0/24\ttcp\t{2000 + j % 60000}\t{2100 + j % 60000}\t-\texpected\n"
            )


def write_filter_file(path: Path, known: int) -> None:
    """The Bloom filter of write_baseline's `known` ports, as `export-known --filter` writes it."""
    servers = pd.DataFrame({"server_h": [_host(i) for i in range(known)], "proto": "tcp",
                            "server_p": [1000 + i % 50 for i in range(known)]})  # fmt: skip
    with open(path, "w") as f:
        write_filter(f, servers)


def run(pcap: Path, baseline: Path, workdir: Path, env: dict[str, str], package: Path = PACKAGE,
        filter_path: Path | None = None) -> tuple[float, int, dict[str, int]]:  # fmt: skip
    """(wall seconds, peak RSS in MB, notices by type) of one Zeek over `pcap` with `baseline`."""
    site = workdir / "site.zeek"
    site.write_text(
        f'redef Site::local_nets += {{ 10.1.0.0/16 }};\nredef SynAck::known_servers_file = "{baseline}";\n'
        + (f'redef SynAck::known_filter_file = "{filter_path}";\n' if filter_path else "")
    )
    for log in workdir.glob("*.log"):
        log.unlink()
    command = ["zeek", "-C", "-r", str(pcap), str(package), str(package / "scripts" / "notice.zeek"), str(site)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"zeek failed on {baseline.name}")
    notices: dict[str, int] = {}
    notice_log = workdir / "notice.log"
    if notice_log.exists():
        for line in notice_log.read_text().splitlines():
            if line.startswith("#"):
                continue
            note = next((f for f in line.split("\t") if f.startswith("SynAck::")), "")
            notices[note] = notices.get(note, 0) + 1
    return wall, usage.ru_maxrss // 1024, notices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=65_535)
    parser.add_argument("--known", type=int, default=1_000_000)
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--package", type=Path, default=PACKAGE, help="the package to measure (e.g. an older one)")
    parser.add_argument("--write-filter", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_filter:
        write_filter_file(args.write_filter, args.known)
        return
    env = zeek_env()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pcap = work / "answers-everything.pcap"
        # In a child: scapy's packets would stay in this process, and a Zeek
        # forked from it would count them in its peak RSS.
        make = "from make_traces import answers_everything as a; from scapy.utils import wrpcap; import sys; "
        make += "wrpcap(sys.argv[1], a(int(sys.argv[2])))"
        subprocess.run([sys.executable, "-c", make, str(pcap), str(args.ports)], check=True,
                       env={**env, "PYTHONPATH": str(PACKAGE / "testing" / "traces")})  # fmt: skip
        baselines = {"empty baseline": (0, 0, False), f"{args.ranges:,} ranges": (0, args.ranges, False),
                     f"{args.known:,} known ports + {args.ranges:,} ranges": (args.known, args.ranges, False),
                     "the same, the known ports in a Bloom filter": (args.known, args.ranges, True)}  # fmt: skip
        results = {}
        for n, (name, (known, ranges, as_filter)) in enumerate(baselines.items()):
            path = work / f"baseline-{n}.tsv"
            filter_path = work / f"baseline-{n}.filter" if as_filter else None
            write_baseline(path, known, ranges, filter_path)
            best = min((run(pcap, path, work, env, args.package, filter_path) for _ in range(args.repeat)),
                       key=lambda r: r[0])  # fmt: skip
            results[name] = best
        print(f"one host answering {args.ports:,} ports; zeek + package + notice.zeek, best of {args.repeat}")
        empty_wall, empty_rss, _ = results["empty baseline"]
        for name, (wall, rss, notices) in results.items():
            counted = ", ".join(f"{n} {k.removeprefix('SynAck::')}" for k, n in sorted(notices.items()))
            print(f"  {name:42} {wall:6.2f} s ({wall / empty_wall:4.2f}x)  {rss:5} MB (+{rss - empty_rss} MB)"
                  f"  notices: {counted}")  # fmt: skip


if __name__ == "__main__":
    main()
