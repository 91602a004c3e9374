"""Which file names a directory walk takes as connection logs."""

from __future__ import annotations

import pytest

from synack.ingest.log_files import is_conn_log_name


@pytest.mark.parametrize(
    "name",
    [
        "conn.log", "conn.log.gz", "conn.json", "conn.10:00:00-11:00:00.log.gz", "conn.2026-11-21-10-00-00.log",
        "conn__2026-11-21-10-00-00__2026-11-21-11-00-00__.log", "eve.json", "eve.3.json",
        "eve-2026-11-21-10:00.json", "eve.json.1", "eve.json.2.gz",
    ],
)  # fmt: skip
def test_connection_logs_are_taken(name: str) -> None:
    assert is_conn_log_name(name)


@pytest.mark.parametrize(
    "name", ["dns.log", "conn-summary.log", "conn_long.log", "conn.log.1", "evening.json", "eve.log", "http.json"]
)
def test_other_logs_are_not(name: str) -> None:
    assert not is_conn_log_name(name)
