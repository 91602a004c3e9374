"""Quarantined lines, counted and replayed through today's rules, exactly once.

A line set aside at ingest (quarantine/<source-id>-<chunk>.jsonl: its file,
line number, reason and text) may be good under today's rules: a record
"in the future" once the ingest host's clock is fixed (or with a wider
`--clock-skew`), a line a newer synack reads. `replay` re-reads the chosen
lines of each quarantine file through the source's own format (an ASCII
log's lines under the header block the ledger kept for it), and in one
ledger transaction commits the records they give (as a source of their
own, `replay-<digest>`) and replaces the quarantine file with the lines
still bad (their reasons as today's rules give them). A crash leaves the
old or the new state; a second replay finds the ingested lines gone.

Not replayed: whole files set aside (`file-*.jsonl`, a file that is no
gzip) and lines too long to keep (quarantined by reference: their bytes
were never kept).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath

from synack.ingest.chunk_files import QUARANTINE_DIR, write_quarantine
from synack.ingest.conn_ingest import parse_and_aggregate, write_parsed
from synack.ingest.errors import NotAConnLog, NotAZeekLog
from synack.ingest.file_modes import PRIVATE, open_new
from synack.ingest.ledger import ChunkRow, ChunkSpan, FileRow
from synack.ingest.line_parsing import Quarantined
from synack.ingest.log_source import MAX_LINE_BYTES, LogSource, is_json_kind, read_blocks
from synack.ingest.store import Store
from synack.ingest.store_files import StoreFS, tmp_name
from synack.ingest.value_limits import DEFAULT_CLOCK_SKEW_SECONDS, ValueLimits

#: The longest reason text a count groups by.
REASON_CHARS = 120


@dataclass(frozen=True)
class Entry:
    """One quarantined line: the log it came from, its line number there, why, and its text."""

    file: str
    line: int
    reason: str
    text: str


@dataclass
class ReplaySummary:
    """What a replay did: records ingested, lines still bad, quarantine files rewritten, days touched."""

    rows: int = 0
    replayed: int = 0  # lines that gave records (or nothing to keep, e.g. a blank line), taken off the quarantine
    still_bad: int = 0
    files: int = 0
    days: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)  # one line per quarantine file that could not be replayed


def quarantine_entries(files: StoreFS, rel: str) -> list[Entry]:
    """The entries of the quarantine file `rel` (relative to the store's root); [] for an unreadable one."""
    try:
        data = files.read_bytes(files.root / rel).to_pybytes()
    except OSError:
        return []
    out = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
            out.append(Entry(str(record["file"]), int(record["line"]), str(record["reason"]), str(record["text"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def quarantine_counts(files: StoreFS, listed: list[str]) -> list[tuple[str, str, int]]:
    """(log file, reason, lines) of the quarantine files `listed`, most lines first."""
    counts: Counter[tuple[str, str]] = Counter()
    for rel in listed:
        for e in quarantine_entries(files, rel):
            counts[(e.file, e.reason[:REASON_CHARS])] += 1
    return [(f, r, n) for (f, r), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _chunk_name(rel: str) -> str:
    """`<source-id>-<chunk>` of a quarantine file's path (its name, less a replay's `-r<digest>`)."""
    stem = PurePath(rel).stem
    return stem.split("-r", 1)[0]


def _replayable(entry: Entry, reasons: list[str] | None) -> bool:
    if entry.reason.startswith("line of ") or entry.line <= 0:
        return False  # kept by reference, or a whole file
    return reasons is None or any(r.lower() in entry.reason.lower() for r in reasons)


def replay(store: Store, *, reasons: list[str] | None = None,
           clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS) -> ReplaySummary:  # fmt: skip
    """Replay the quarantined lines whose reason holds one of `reasons`
    (case-insensitive; None: every replayable line) through today's rules
    with `clock_skew` (see the module); return what it did."""
    summary = ReplaySummary()
    book = store.ledger
    rows = [f for f in book.file_rows(pending=False) if f.day is None and f.path.startswith(QUARANTINE_DIR + "/")]
    for row in rows:
        name = PurePath(row.path).stem
        if name.startswith("file-"):
            continue
        source_id = name.split("-", 1)[0]
        kind, state = book.source_kind(source_id), book.source_state(source_id)
        entries = quarantine_entries(store.files, row.path)
        chosen = [i for i, e in enumerate(entries) if _replayable(e, reasons)]
        if not chosen:
            continue
        if kind is None or state is None:
            summary.skipped.append(f"{row.path}: its source is not in the ledger")
            continue
        try:
            _replay_file(store, row, source_id, kind, state.header, entries, chosen, clock_skew, summary)
        except (NotAZeekLog, NotAConnLog) as err:
            summary.skipped.append(f"{row.path}: {err}")
    if summary.days:
        store.compact_days(summary.days)
        store.roll_up_months()
    return summary


def _replay_file(store: Store, row: FileRow, source_id: str, kind: str, header: bytes, entries: list[Entry],
                 chosen: list[int], clock_skew: float, summary: ReplaySummary) -> None:  # fmt: skip
    """Replay the entries `chosen` (positions) of one quarantine file's `entries`
    and commit, unless none of them reads now (see replay)."""
    files, root = store.files, store.root
    head = header if header and not is_json_kind(kind) else b""
    if head and not head.endswith(b"\n"):
        head += b"\n"
    texts = [entries[i].text.encode("utf-8", "surrogateescape")[:MAX_LINE_BYTES] for i in chosen]
    body = head + b"".join(t.replace(b"\n", b" ") + b"\n" for t in texts)
    digest = hashlib.sha256(row.path.encode() + b"\0" + repr([entries[i].line for i in chosen]).encode()).hexdigest()
    digest = digest[:20]
    replay_id = f"replay-{digest}"
    folder = Path(root) if files.local else files.ledger.parent
    spool = folder / f".replay-{os.getpid()}-{digest}.log"
    with open(open_new(spool, PRIVATE), "wb") as out:  # lines from the network
        out.write(body)
    try:
        source = LogSource(spool, kind, replay_id, False)
        first_data_line = head.count(b"\n") + 1
        parsed = [parse_and_aggregate(source, raw, None, ValueLimits(clock_skew))
                  for raw in read_blocks(source, chunk_bytes=len(body) + 1, finished=True)]  # fmt: skip
    finally:
        spool.unlink(missing_ok=True)
    if len(parsed) != 1:
        raise NotAZeekLog(f"its {len(chosen)} lines did not read as one block")
    chunk, days = parsed[0]
    bad = {q.line - first_data_line: q.reason for q in chunk.quarantined}
    still = {chosen[k]: reason for k, reason in bad.items() if 0 <= k < len(chosen)}
    replayed = len(chosen) - len(still)
    summary.still_bad += len(still)
    if not replayed:
        return  # nothing reads now: the file stays as it is
    picked = set(chosen)
    keep = [
        replace(e, reason=still[i]) if i in still else e for i, e in enumerate(entries) if i not in picked or i in still
    ]
    written = write_parsed(files, source, 0, replace(chunk, quarantined=[]), days)
    final = root / QUARANTINE_DIR / f"{_chunk_name(row.path)}-r{digest[:8]}.jsonl"
    new_files = [FileRow(files.rel(f), replay_id, 0, day, n, stamp) for f, day, n, stamp in written.planned]
    remaining: list[FileRow] = []
    if keep:
        stamp = write_quarantine(files, [Quarantined(e.line, e.reason, e.text.encode("utf-8", "surrogateescape"))
                                         for e in keep], Path(keep[0].file), tmp_name(final))  # fmt: skip
        remaining = [FileRow(files.rel(final), row.source_id, row.chunk, None, len(keep), stamp)]
    planned = [f for f, *_ in written.planned]
    cleanup = planned + [f for p in written.partials for f in p.paths(root)] + ([final] if keep else [])
    span = ChunkSpan(0, 0, len(body), 1, len(chosen) + 1, written.rows, 0)
    chunk_row = ChunkRow(replay_id, kind, row.path, span, b"", True)
    with store.transaction(cleanup=cleanup):  # its temporaries are removed if it fails
        book = store.ledger
        book.add_chunk(chunk_row, new_files, written.partials, written.sensors)
        book.remove_files([row.path])
        retired = store.retire([root / row.path])
        book.add_files(remaining)
        book.unquarantine(source_id, replayed)
    store.hide(retired, keep=[final] if keep else [])
    store.publish(planned + ([final] if keep else []))
    store.publish_partials(written.partials)
    summary.rows += written.rows
    summary.replayed += replayed
    summary.files += 1
    summary.days.update(r.day for r in new_files if r.day is not None)
