"""Test-only entry point: run synack (or a snippet) with a fault hook that kills the process.

    python tests/crash_entry.py POINT:N synack-args...     # the CLI
    python tests/crash_entry.py POINT:N -c "python code"    # a library call

The process dies with SIGKILL, as a power cut would, the N-th time a commit
reaches POINT (ingest.fault_points). Production code has no such switch.
"""

from __future__ import annotations

import os
import signal
import sys


def install(spec: str) -> None:
    """Kill this process at the N-th pass of the point named by `spec` ("point:n")."""
    from synack.ingest import fault_points

    point, _, nth = spec.rpartition(":")
    passes = {"n": 0}

    def hook(reached: str) -> None:
        if reached == point:
            passes["n"] += 1
            if passes["n"] == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

    fault_points.hook = hook


if __name__ == "__main__":
    install(sys.argv[1])
    if sys.argv[2:3] == ["-c"]:
        exec(compile(sys.argv[3], "<crash-test>", "exec"), {"__name__": "__crash__"})
    else:
        sys.argv = ["synack", *sys.argv[2:]]
        from synack.cli import main

        main()
