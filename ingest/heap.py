"""The C library's heap: memory a band of an answer freed goes back to the system.

glibc keeps freed blocks in its arenas; after a band of millions of rows
the heap stays as large as the band made it, fragmented, and the next band
grows it further. `give_back` returns every free page (malloc_trim), so a
banded answer's peak follows one band, not the sum of their leftovers.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any


@functools.cache
def glibc() -> Any:
    """The C library when it is glibc (its allocator can be tuned and trimmed), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc's own)
    except (OSError, AttributeError):
        return None  # not glibc: nothing to tune
    return libc


def give_back() -> None:
    """Return the heap's free pages to the system (nothing on other C libraries)."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)
