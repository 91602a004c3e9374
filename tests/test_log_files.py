"""Which file names a directory walk takes as connection logs."""

from __future__ import annotations

from pathlib import Path

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


def test_symlink_loops_end_at_once_and_a_linked_current_is_followed(tmp_path: Path) -> None:
    """zeekctl's logs/current links into its spool (outside the tree): followed; `a -> .` loops: visited once."""
    import time

    from synack.ingest.log_files import find_conn_logs

    logs, spool = tmp_path / "logs", tmp_path / "spool" / "zeek"
    (logs / "2026-11-21").mkdir(parents=True)
    spool.mkdir(parents=True)
    (logs / "2026-11-21" / "conn.10:00:00-11:00:00.log").write_text("x")
    (spool / "conn.log").write_text("x")
    (logs / "current").symlink_to(spool)
    (logs / "a").symlink_to(logs)
    (logs / "2026-11-21" / "b").symlink_to(logs)
    started = time.monotonic()
    found = find_conn_logs([logs]).conn
    assert time.monotonic() - started < 2
    assert sorted(p.resolve() for p in found) == sorted(
        [(logs / "2026-11-21" / "conn.10:00:00-11:00:00.log").resolve(), (spool / "conn.log").resolve()]
    )


def test_a_walk_ends_when_asked_to_stop(tmp_path: Path) -> None:
    """A SIGTERM during the walk of a huge tree (watch sets its stop flag) ends the walk at the next directory."""
    from synack.ingest.log_files import find_conn_logs

    for i in range(30):
        (tmp_path / f"d{i:02d}").mkdir()
        (tmp_path / f"d{i:02d}" / "conn.log").write_text("x\n")
    assert len(find_conn_logs([tmp_path]).conn) == 30
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 5

    found = find_conn_logs([tmp_path], stop)
    assert len(found.conn) == 5 and len(asked) == 6  # 5 folders walked, then it stopped
