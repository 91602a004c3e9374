"""How long after a SYN-ACK the sensor's notice is raised (notice.zeek), in wall time.

    python bench/bench_notice_delay.py

Replays the package's new-ports.pcap in pseudo-realtime (`zeek
--pseudo-realtime -r`, packets at their captured pace) with notice.zeek and
a baseline that knows some of its ports, and prints, per notice, the wall
time from the SYN-ACK (connection_established) to the notice (Notice's
policy hook), and for UDP from the server's answer to the notice (the
connection's end: Zeek's UDP inactivity timeout, or the end of the capture).
Needs a real Zeek (on PATH, or ../shared/zeek/bin).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_zeek_package import PACKAGE, zeek_env  # noqa: E402

CAPTURE = PACKAGE / "testing" / "traces" / "new-ports.pcap"
BASELINE = PACKAGE / "testing" / "traces" / "known.tsv"

PROBE = """
redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };
redef SynAck::known_servers_file = "%s";
global answered: table[string] of time;
event connection_established(c: connection) { answered[c$uid] = current_time(); }
event udp_reply(u: connection) { if ( u$uid !in answered ) answered[u$uid] = current_time(); }
hook Notice::policy(n: Notice::Info)
    {
    print fmt("%%s %%s:%%s %%.1f ms", n$note, n$dst, n$p, 1000 * interval_to_double(current_time() - answered[n$uid]));
    }
"""


def main() -> None:
    env = zeek_env()
    with tempfile.TemporaryDirectory(prefix="synack-notice-") as tmp:
        probe = Path(tmp) / "probe.zeek"
        probe.write_text(PROBE % BASELINE)
        scripts = [str(PACKAGE), str(PACKAGE / "scripts" / "notice.zeek"), str(probe)]
        command = ["zeek", "-C", "--pseudo-realtime", "-r", str(CAPTURE), *scripts]
        run = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        sys.exit(run.stderr[-2000:])
    print("delay from the server's answer to the notice (wall time, pseudo-realtime replay):")
    print(run.stdout, end="")


if __name__ == "__main__":
    main()
