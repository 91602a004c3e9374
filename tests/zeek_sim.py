"""A stand-in for Zeek and zeekctl writing a log directory, for watch tests.

It appends conn.log lines in bursts (leaving the last line half written
between bursts, as a writer flushing mid-line does), and rotates the way
zeekctl does: `#close`, rename out of `current/`, gzip into the dated
folder (the .gz appearing half written first), a new `conn.log` with a new
header. It remembers every uid it wrote completely.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
from pathlib import Path

from tests.conftest import conn_header, conn_line


class ZeekSim:
    def __init__(self, logdir: Path, seed: int = 1, start: float = 1795046400.0) -> None:
        self.logdir = logdir
        self.live = logdir / "current" / "conn.log"
        self.live.parent.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.clock = start
        self.opened = start
        self.uids: list[str] = []
        self.pending = ""  # the rest of a half-written line
        self.serial = 0
        self._open()

    def _stamp(self, ts: float, fmt: str) -> str:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime(fmt)

    def _open(self) -> None:
        self.opened = self.clock
        with open(self.live, "w") as f:
            f.write(conn_header(opened=self._stamp(self.clock, "%Y-%m-%d-%H-%M-%S")))

    def write(self, lines: int, partial: bool = True) -> None:
        """Append `lines` complete lines (finishing any half line first)."""
        out = [self.pending]
        self.pending = ""
        for _ in range(lines):
            self.clock += self.rng.uniform(0.5, 20)
            self.serial += 1
            uid = f"C{self.serial:08d}"
            out.append(conn_line(uid, ts=self.clock, resp=f"10.9.{self.serial % 7}.1", resp_p=80 + self.serial % 3))
            self.uids.append(uid)
        if partial:
            self.clock += 1
            self.serial += 1
            uid = f"C{self.serial:08d}"
            line = conn_line(uid, ts=self.clock)
            cut = self.rng.randrange(1, len(line) - 1)
            out.append(line[:cut])
            self.pending = line[cut:]
            self.uids.append(uid)  # it will be completed by the next write or rotation
        with open(self.live, "a") as f:
            f.write("".join(out))

    def rotate(self) -> Path:
        """Close the live log, move it to the dated archive folder, gzip it, open a new one."""
        with open(self.live, "a") as f:
            f.write(self.pending + f"#close\t{self._stamp(self.clock, '%Y-%m-%d-%H-%M-%S')}\n")
        self.pending = ""
        day = self._stamp(self.opened, "%Y-%m-%d")
        name = f"conn.{self._stamp(self.opened, '%H:%M:%S')}-{self._stamp(self.clock, '%H:%M:%S')}.log"
        folder = self.logdir / day
        folder.mkdir(exist_ok=True)
        moved = folder / name
        self.live.rename(moved)
        data = gzip.compress(moved.read_bytes(), mtime=0)
        archive = folder / (name + ".gz")
        archive.write_bytes(data[: len(data) // 2])  # zeekctl's gzip is still running...
        archive.write_bytes(data)  # ...and done
        moved.unlink()
        self.clock += 1
        self._open()
        return archive

    def finish(self) -> None:
        """Complete a half-written line, as Zeek would before anyone reads the end."""
        if self.pending:
            with open(self.live, "a") as f:
                f.write(self.pending)
            self.pending = ""
