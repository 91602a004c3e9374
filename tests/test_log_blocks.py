"""Header blocks are read once wherever they appear: concatenations of
archives (on a pipe or in a file), the archives themselves, a longer copy
of a pipe and a log that grows after `#close`, in any order.

Before: `zcat day/conn.00*.gz | synack ingest -`, then the longer pipe,
added 0 of 43 new rows; the pipe then `synack ingest day/` doubled 43
rows; a log or gzip archive grown after its `#close` never had its new
part read.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.ingest.conn_ingest import ingest_paths, ingest_stdin
from tests.conftest import conn_header, conn_line, store_table

ARCHIVES = 5


def _archive_text(n: int) -> str:
    """Archive `n`: a closed conn log of its own hour, 7 + 3n records with uids naming it."""
    hour = 9 + n
    lines = [conn_line(f"A{n}x{i:03d}", ts=1795000000.0 + n * 3600 + i, resp_p=(22, 80, 443)[i % 3])
             for i in range(7 + 3 * n)]  # fmt: skip
    closing = f"#close\t2026-11-21-{hour:02d}-59-59\n"
    return conn_header(opened=f"2026-11-21-{hour:02d}-00-00") + "".join(lines) + closing


def _uids(numbers: list[int]) -> Counter[str]:
    return Counter(f"A{n}x{i:03d}" for n in set(numbers) for i in range(7 + 3 * n))


def _stored(store: Path) -> Counter[str]:
    table = store_table(store)
    return Counter(table.column("uid").to_pylist()) if table.num_rows else Counter()


@pytest.fixture
def day(tmp_path: Path) -> Path:
    """A day folder of ARCHIVES rotated gzip archives, as zeekctl leaves them."""
    folder = tmp_path / "logs" / "2026-11-21"
    folder.mkdir(parents=True)
    for n in range(ARCHIVES):
        (folder / f"conn.{9 + n:02d}:00:00-{10 + n:02d}:00:00.log.gz").write_bytes(
            gzip.compress(_archive_text(n).encode(), mtime=0)
        )
    return folder


def _pipe(store: Path, numbers: list[int]) -> int:
    """`zcat` of archives `numbers`, in that order, piped into `synack ingest -`; the rows it added."""
    return ingest_stdin(io.BytesIO("".join(_archive_text(n) for n in numbers).encode()), store).rows


def test_a_longer_pipe_adds_exactly_the_archives_the_shorter_one_lacked(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _pipe(store, [0, 1, 2]) == sum(7 + 3 * n for n in (0, 1, 2))
    assert _pipe(store, [0, 1, 2, 3, 4]) == sum(7 + 3 * n for n in (3, 4))
    assert _pipe(store, [0, 1, 2, 3, 4]) == 0
    assert _stored(store) == _uids([0, 1, 2, 3, 4])


def test_a_pipe_then_the_archives_themselves_doubles_nothing(day: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _pipe(store, [0, 1, 2])
    assert ingest_paths([day], store).rows == sum(7 + 3 * n for n in (3, 4))
    assert _stored(store) == _uids(list(range(ARCHIVES)))


def test_the_archives_then_a_concatenation_in_a_file_adds_nothing(day: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_paths([day], store)
    joined = tmp_path / "joined" / "conn.log"
    joined.parent.mkdir()
    joined.write_text("".join(_archive_text(n) for n in (2, 0, 4)))
    assert ingest_paths([joined.parent], store).rows == 0
    assert _stored(store) == _uids(list(range(ARCHIVES)))


def test_a_log_that_grows_after_its_close_has_its_new_block_read(tmp_path: Path) -> None:
    store, log = tmp_path / "store", tmp_path / "logs" / "conn.log"
    log.parent.mkdir()
    log.write_text(_archive_text(0))
    assert ingest_paths([log.parent], store).rows == 7
    with log.open("a") as f:
        f.write(_archive_text(1))
    assert ingest_paths([log.parent], store).rows == 10
    assert _stored(store) == _uids([0, 1])


def test_a_gzip_archive_with_a_member_appended_has_it_read(tmp_path: Path) -> None:
    """`gzip -c more >> day.log.gz`: a second gzip member after the first one's `#close`."""
    store, archive = tmp_path / "store", tmp_path / "logs" / "conn.day.log.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(_archive_text(0).encode()))
    assert ingest_paths([archive.parent], store).rows == 7
    with archive.open("ab") as f:
        f.write(gzip.compress(_archive_text(1).encode()))
    assert ingest_paths([archive.parent], store).rows == 10
    assert ingest_paths([archive.parent], store).rows == 0
    assert _stored(store) == _uids([0, 1])


def test_the_same_archive_twice_in_one_pipe_is_read_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _pipe(store, [1, 1, 2, 1]) == 10 + 13
    assert _stored(store) == _uids([1, 2])


def test_a_different_concatenation_starting_with_the_same_archive_is_a_source_of_its_own(tmp_path: Path) -> None:
    """(0, 1) then (0, 2) then (0, 2, 3): each new archive once, whatever came first in the pipe."""
    store = tmp_path / "store"
    assert _pipe(store, [0, 1]) == 7 + 10
    assert _pipe(store, [0, 2]) == 13
    assert _pipe(store, [0, 2, 3]) == 16
    assert _pipe(store, [0, 1, 3, 4]) == 19
    assert _stored(store) == _uids([0, 1, 2, 3, 4])


def test_archives_of_the_same_lengths_in_another_order_are_another_stream(tmp_path: Path) -> None:
    """Hypothesis found it: pipes 2,0,3,2 then 2,1,2,2 start with the same
    block, are as long, and hold the same block where the first one's last
    began (archives 0 + 3 are as long as 1 + 2). The second was resumed at
    the first's end: archive 1 in its middle was never read. A resumed
    stream's blocks before its last must all have been read."""
    store = tmp_path / "store"
    assert _pipe(store, [2, 0, 3, 2]) == sum(7 + 3 * n for n in (2, 0, 3))
    assert _pipe(store, [2, 1, 2, 2]) == 10
    assert _pipe(store, [2, 1, 2, 2]) == 0
    assert _pipe(store, [2, 0, 3, 2, 4]) == 19  # a longer copy of the first still resumes where it ended
    assert _stored(store) == _uids([0, 1, 2, 3, 4])


@pytest.mark.parametrize("scan_bytes", [7, 333, 1 << 20])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_blocks_before_names_every_block_start_in_one_pass(
    tmp_path: Path, compressed: bool, scan_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """blocks_before gives the id block_at gives at each block start, in
    order, across read slices (a block of more than a slice, markers and
    headers straddling a slice's end), and None when a header is cut by
    the end."""
    from synack.ingest.log_source import block_at, blocks_before, identify

    monkeypatch.setattr("synack.ingest.log_source._SCAN_BYTES", scan_bytes)
    big = "".join(conn_line(f"B{i:06d}", ts=1795000000.0 + i) for i in range(12_000))  # > 1 MiB
    texts = [_archive_text(0), conn_header(opened="2026-11-21-08-00-00") + big + "#close\t2026-11-21-08-59-59\n",
             _archive_text(1), _archive_text(2)]  # fmt: skip
    data = "".join(texts).encode()
    path = tmp_path / ("conn.log.gz" if compressed else "conn.log")
    path.write_bytes(gzip.compress(data, mtime=0) if compressed else data)
    source = identify(path)
    assert source is not None
    starts = [sum(len(t.encode()) for t in texts[:k]) for k in range(len(texts))]
    ids = [block_at(source, start) for start in starts]
    assert all(ids) and len(set(ids)) == len(ids)
    ends = [*starts[1:], len(data)]
    for k, start in enumerate(starts):
        assert blocks_before(source, start) == ids[:k]
        assert blocks_before(source, (start + ends[k]) // 2) == ids[: k + 1]  # past its first data line
    assert blocks_before(source, len(data)) == ids
    assert blocks_before(source, starts[1] + 20) is None  # the big block's header is cut by the end
    assert blocks_before(source, len(data) + 1) is None  # the stream is shorter


_ORDERS = st.lists(st.integers(0, ARCHIVES - 1), min_size=1, max_size=4)
_STEPS = st.lists(st.one_of(st.tuples(st.just("pipe"), _ORDERS), st.tuples(st.just("file"), _ORDERS),
                            st.tuples(st.just("archive"), st.integers(0, ARCHIVES - 1)),
                            st.tuples(st.just("folder"), _ORDERS),
                            st.tuples(st.just("grow"), _ORDERS)), min_size=1, max_size=5)  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS)
def test_every_order_of_pipes_files_archives_and_appends_stores_each_record_once(
    steps: list[tuple[str, object]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("orders")
    store, seen = root / "store", []
    growing = root / "growing" / "conn.log"
    for i, (what, arg) in enumerate(steps):
        numbers = list(arg) if isinstance(arg, list) else [int(arg)]  # type: ignore[call-overload]
        seen += numbers
        if what == "pipe":
            _pipe(store, numbers)
        elif what == "archive":
            path = root / f"archives-{i}" / f"conn.{numbers[0]}.log.gz"
            path.parent.mkdir()
            path.write_bytes(gzip.compress(_archive_text(numbers[0]).encode(), mtime=0))
            ingest_paths([path.parent], store)
        elif what == "folder":  # several archives in one run: committed as one batch of small logs
            folder = root / f"folder-{i}"
            folder.mkdir()
            for k, n in enumerate(numbers):
                (folder / f"conn.{k}-{n}.log.gz").write_bytes(gzip.compress(_archive_text(n).encode(), mtime=0))
            ingest_paths([folder], store)
        elif what == "file":
            path = root / f"joined-{i}" / "conn.log"
            path.parent.mkdir()
            path.write_text("".join(_archive_text(n) for n in numbers))
            ingest_paths([path.parent], store)
        else:  # a live log Zeek appends to: each log in two writes, an ingest after each (a block read in parts)
            growing.parent.mkdir(exist_ok=True)
            for n in numbers:
                lines = _archive_text(n).splitlines(keepends=True)
                for part in (lines[: len(lines) // 2], lines[len(lines) // 2 :]):
                    with growing.open("a") as f:
                        f.write("".join(part))
                    ingest_paths([growing.parent], store)
        assert _stored(store) == _uids(seen), steps[: i + 1]


def test_an_adopted_ledger_knows_the_blocks_a_pipe_read(day: Path, tmp_path: Path) -> None:
    """The blocks a concatenation read come back from the files' provenance (check --adopt of a lost ledger)."""
    from synack.ingest.store_adopt import adopt_store

    store = tmp_path / "store"
    _pipe(store, [0, 1, 2])
    (store / "ledger.sqlite").unlink()
    assert adopt_store(store).records == sum(7 + 3 * n for n in (0, 1, 2))
    assert ingest_paths([day], store).rows == sum(7 + 3 * n for n in (3, 4))
    assert _pipe(store, [0, 1, 2, 3]) == 0
    assert _stored(store) == _uids(list(range(ARCHIVES)))


def test_the_rotated_archive_of_a_log_read_to_its_close_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source read to its `#close` is read on only when its file may hold more (a plain file grown, an archive
    whose last gzip member is not what was read): the hourly rotation of a closed live log costs no decompression."""
    from synack.ingest import conn_ingest, small_batches

    store, live = tmp_path / "store", tmp_path / "logs" / "conn.log"
    live.parent.mkdir()
    live.write_text(_archive_text(2))
    assert ingest_paths([live.parent], store).rows == 13
    archive = live.parent / "2026-11-21" / "conn.11:00:00-12:00:00.log.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(live.read_bytes()))
    live.unlink()

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(conn_ingest, "read_blocks", unread)
    monkeypatch.setattr(small_batches, "read_blocks", unread)
    summary = ingest_paths([live.parent], store)
    assert [f.status for f in summary.files] == ["unchanged"] and summary.rows == 0


def test_blocks_that_start_with_blank_lines_are_named_by_their_first_data_line(tmp_path: Path) -> None:
    """Two blocks with the same header, each beginning with a blank line
    (the first holding nothing else): the second's record is read once, not
    dropped as a repeat of the first (found by test_fuzz_input's hypothesis:
    both were named by the blank line). Reading the log again adds nothing."""
    header = conn_header()
    log = tmp_path / "conn.log"
    log.write_text(header + "\n" + header + "\n" + conn_line("C3", ts=1795000003.0))
    store = tmp_path / "store"
    ingest_paths([log], store)
    assert list(store_table(store).column("uid").to_pylist()) == ["C3"]
    other = tmp_path / "again" / "conn.log"
    other.parent.mkdir()
    other.write_bytes(log.read_bytes())
    ingest_paths([other], store)
    assert store_table(store).num_rows == 1
