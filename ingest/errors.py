"""Exceptions a user can cause; the CLI turns each into one line and exit 1."""

from __future__ import annotations


class SynackError(Exception):
    """Base of every error synack reports to a user as one line."""


class NotAZeekLog(SynackError):
    """The input is not a (readable) Zeek or Suricata log."""


class NotAConnLog(SynackError):
    """The input is a log, but not a connection log."""


class StoreLocked(SynackError):
    """Another synack process holds the store's lock."""


class StoreError(SynackError):
    """The store is unusable (not a synack store, inconsistent, unwritable)."""


class ClockBehind(SynackError):
    """Most lines of a chunk are "in the future": the ingest host's clock is behind the log (none of it committed)."""
