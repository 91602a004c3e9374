"""The modes of the files and directories synack creates: private by default.

A store holds the raw lines of a network's traffic (quarantine), the
records of who talked to whom, and crash reports with values in them; none
of it is for every local user. Directories are created 0750 and files
0640 (the process's umask can only take more away), the quarantine, spooled
standard input and crash reports 0600; a file that replaces another keeps
the replaced file's mode (an operator's chmod survives a re-export).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIRECTORY = 0o750
FILE = 0o640
PRIVATE = 0o600
PRIVATE_DIRECTORY = 0o700


def make_dirs(path: Path, mode: int = DIRECTORY) -> None:
    """Create directory `path` and its missing parents, each with `mode` (less the umask)."""
    missing = []
    at = Path(path)
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            pass


def open_new(path: Path, mode: int = FILE) -> int:
    """A file descriptor of `path` created (or truncated) for writing with `mode` (less the umask)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)


def mode_to_keep(path: Path, default: int = FILE) -> int:
    """The mode a file replacing `path` should have: `path`'s own when it exists, else `default`."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return default
