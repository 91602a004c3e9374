"""Header blocks: each `#separator ... #close` block of a Zeek ASCII stream is read once, wherever it appears.

Zeek writes one header block per log file; a concatenation of archives
(`zcat conn.*.gz | synack ingest -`, or `cat`ed into one file) and a log
that grows after its `#close` hold several. A block's identity is its
content, like a file's: a digest of its kind, its header lines and its
first data line (the `#open` stamp and the first uid make it unique). The
ledger keeps, per block, how many of its bytes were committed and whether
it ended (`#close`, or another block began after it), whichever stream
they were read from. A reader then drops the data lines of every block
already read (wholly, or up to its committed bytes) and of a block seen
earlier in the same stream, so the archives themselves, a concatenation of
them, a longer copy of a pipe and a log that grew after `#close` each give
every record once, in any order.

A stream's source identity stays its first block's (ingest.log_source:
what a store written before blocks knows). A resumed stream is checked
against the block the ledger saw at its offset (`tail`): a different
concatenation that starts with the same log is a source of its own
(`derived_id`), read from its start with the known blocks dropped.
JSON logs have no blocks: a pipe of several JSON logs is one source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

from synack.ingest.ledger import BlockMark
from synack.ingest.zeek_ascii import Segment

#: No data of the block is wanted: all of it was read.
_ALL = 1 << 62


#: What the ledger knows of blocks: id -> (bytes committed, ended).
KnownBlocks = Mapping[str, tuple[int, bool]]


def block_id(kind: str, header: bytes, first_line: bytes) -> str:
    """The identity of a header block of a `kind` log: its header lines and first data line (not a blank one)."""
    return hashlib.sha256(kind.encode() + b"\0block\0" + header + first_line).hexdigest()[:24]


def derived_id(source_id: str, tail_block: str) -> str:
    """The source id of a stream that starts like `source_id` but holds the block `tail_block` where it did not."""
    return hashlib.sha256(f"{source_id}\0{tail_block}".encode()).hexdigest()[:24]


class BlockTracker:
    """Follows the header blocks of one ASCII stream as its buffers are split:
    drops the data lines already read, and marks how far each block was read."""

    def __init__(self, kind: str, known: KnownBlocks, resume: tuple[str, int] | None = None) -> None:
        """`resume`: the (id, start) of the block in force at the offset reading resumes at."""
        self._kind = kind
        self._known = known
        self._ids: dict[int, str | None] = {}
        self._starts: dict[int, int] = {}
        self._cut: dict[int, int] = {}
        self._first: dict[str, int] = {}  # block id -> the block number it first had in this stream
        if resume is not None and resume[0]:
            self._ids[1], self._starts[1] = resume[0], resume[1]
            self._cut[1] = self._cut_for(resume[0], resume[1])  # read further in another stream, or a repeat
            self._first[resume[0]] = 1
        elif resume is not None and resume[1]:
            self._starts[1] = resume[1]  # named by its first data line, read after the resume

    def filter(self, segments: list[Segment], buf_offset: int, chunk_end: int, current: int, closed: bool,
               begun: list[tuple[int, int]]) -> tuple[list[Segment], tuple[BlockMark, ...]]:  # fmt: skip
        """The `segments` of a buffer starting at stream offset `buf_offset`
        (where the blocks `begun`, (number, position), began) without the
        data already read, and the marks of the blocks this chunk (ending at
        `chunk_end`, block `current` in force, `closed` after it) read from
        or ended."""
        kept = []
        active = {current}
        for number, at in begun:
            self._starts.setdefault(number, buf_offset + at)
        for seg in segments:
            number = seg.block
            active.add(number)
            if number not in self._ids:
                self._enter(number, seg)
            cut, start = self._cut[number], buf_offset + seg.at
            if cut >= start + len(seg.data):
                continue
            if cut > start:
                dropped = bytes(seg.data[: cut - start])
                seg = replace(seg, data=seg.data[cut - start :], first_line=seg.first_line + dropped.count(b"\n"),
                              at=seg.at + cut - start)  # fmt: skip
            kept.append(seg)
        marks = []
        for number in sorted(active):
            bid = self._ids.get(number)
            if bid is None or self._first.get(bid) != number or self._cut.get(number) == _ALL:
                continue  # not yet named, a repeat in this stream, or read before
            ended = number < current or closed
            marks.append(BlockMark(bid, self._starts[number], chunk_end - self._starts[number], ended))
        return kept, tuple(marks)

    def tail(self, current: int) -> tuple[str, int]:
        """The (id, start) of block `current`, the one in force where a chunk
        ends: what a resumed read checks and starts from ("" while it has no
        data line yet; ("", 0) when its start is not known)."""
        if current not in self._starts:
            return "", 0
        return self._ids.get(current) or "", self._starts[current]

    def _enter(self, number: int, seg: Segment) -> None:
        """Name block `number` from its first segment and decide what of it to drop."""
        start = self._starts.get(number)
        head = bytes(seg.data[: 1 << 16])
        lead = len(head) - len(head.lstrip(b"\r\n"))  # blank lines name nothing: two blocks may both start so
        end = head.find(b"\n", lead)
        if start is not None and seg.header.raw and head and lead == len(head):
            self._cut[number] = 0  # blank lines only so far: named by its first data line, in a later segment
            return
        if start is None or not seg.header.raw or end < 0:
            self._ids[number], self._cut[number] = None, 0  # no header of its own: nothing to match
            return
        bid = block_id(self._kind, seg.header.raw, head[lead : end + 1])
        self._ids[number] = bid
        if bid in self._first:
            self._cut[number] = _ALL  # the same block earlier in this stream
            return
        self._first[bid] = number
        self._cut[number] = self._cut_for(bid, start)

    def _cut_for(self, bid: str, start: int) -> int:
        """Up to where (a stream offset) the data of block `bid`, beginning at `start`, was read before."""
        known = self._known.get(bid)
        if known is None:
            return 0
        return _ALL if known[1] else start + known[0]
