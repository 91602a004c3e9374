"""Named points inside a commit where the crash-consistency tests kill the process.

Production code calls `reached(point)` and nothing happens: `hook` is None
unless a test entry point (tests/crash_entry.py) installs one, so no
environment variable or setting reaches these paths in production.
"""

from __future__ import annotations

from collections.abc import Callable

#: Called with each point's name as it is reached; set only by tests.
hook: Callable[[str], None] | None = None


def reached(point: str) -> None:
    """Tell the test hook (if any) that a commit reached `point`."""
    if hook is not None:
        hook(point)
