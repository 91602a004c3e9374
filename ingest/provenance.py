"""Which chunks of which logs a store file holds, kept in the file itself.

Every record, notice and identity file carries in its Parquet key-value
metadata (key `synack.provenance`) what the ledger knows of the chunks its
rows came from: for each log source its kind, newest path, the header
block in force after its newest chunk (what a reader needs to resume in
the middle of the log) and whether that chunk finished the log; for each
chunk its byte and line span and its record and quarantined-line counts.
It also names the (source, chunk) the ledger files the file under (its
*owner*). A merge (a source's compaction, a day's small files, identity
tiers, a rewrite by new handshake rules) carries the union of its inputs'.

The ledger stays the truth while it is current; the files hold the same
facts so that `synack check --adopt` (ingest.store_adopt) can rebuild a
ledger that was lost, or restored from a backup older than the store,
from the files the store really holds, offsets included, so that reading
the logs again doubles nothing.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from synack.ingest.ledger import BlockMark, ChunkRow, ChunkSpan

#: The key of a store file's Parquet (and Arrow schema) metadata holding its provenance.
KEY = b"synack.provenance"
_VERSION = 1


@dataclass(frozen=True)
class SourceFacts:
    """What a file knows of one log source: its chunks in the file, and
    (from the newest of them) its kind, path, header and completeness."""

    kind: str
    path: str
    header: bytes
    complete: bool
    chunks: tuple[ChunkSpan, ...]
    blocks: tuple[BlockMark, ...] = ()  # the header blocks its chunks read from (ingest.log_blocks)
    tail: tuple[str, int] = ("", 0)  # the block in force after its newest chunk

    @property
    def newest(self) -> int:
        return max(c.chunk for c in self.chunks)


@dataclass(frozen=True)
class Provenance:
    """The provenance of one store file (see the module)."""

    owner: tuple[str, int]
    sources: Mapping[str, SourceFacts]

    def encode(self) -> bytes:
        """The provenance as compact JSON (headers zlib-compressed, base64)."""
        sources = {
            source: {
                "kind": facts.kind,
                "path": facts.path,
                "header": base64.b64encode(zlib.compress(facts.header)).decode("ascii"),
                "complete": int(facts.complete),
                "chunks": [
                    [c.chunk, c.byte_start, c.byte_end, c.line_start, c.line_end, c.rows, c.quarantined]
                    for c in facts.chunks
                ],
                "blocks": [[b.block_id, b.start, b.bytes, int(b.ended)] for b in facts.blocks],
                "tail": list(facts.tail),
            }
            for source, facts in sorted(self.sources.items())
        }
        document = {"v": _VERSION, "owner": list(self.owner), "sources": sources}
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Provenance:
        """The provenance `encode` wrote. Raises ValueError for anything else."""
        try:
            document = json.loads(data)
            if document.get("v") != _VERSION:
                raise ValueError(f"provenance version {document.get('v')!r}")
            owner = (str(document["owner"][0]), int(document["owner"][1]))
            sources = {
                str(source): SourceFacts(
                    str(facts["kind"]),
                    str(facts["path"]),
                    zlib.decompress(base64.b64decode(facts["header"])),
                    bool(facts["complete"]),
                    tuple(ChunkSpan(*(int(v) for v in span)) for span in facts["chunks"]),
                    tuple(BlockMark(str(b[0]), int(b[1]), int(b[2]), bool(b[3])) for b in facts.get("blocks", ())),
                    (str(facts.get("tail", ("", 0))[0]), int(facts.get("tail", ("", 0))[1])),
                )
                for source, facts in document["sources"].items()
            }
        except (KeyError, IndexError, TypeError, AttributeError, zlib.error) as err:
            raise ValueError(f"not a synack provenance ({err!r})") from None
        return cls(owner, sources)


def of_chunk(row: ChunkRow) -> Provenance:
    """The provenance of the files of one committed chunk (owned by it)."""
    facts = SourceFacts(row.kind, row.path, row.header, row.complete, (row.span,), row.blocks, row.tail)
    return Provenance((row.source_id, row.span.chunk), {row.source_id: facts})


def union(owner: tuple[str, int], parts: Iterable[Provenance | None]) -> Provenance | None:
    """The provenance of a file merged from files of provenance `parts`
    (None: a file written before provenance, whose chunks it cannot
    name), owned by `owner`; None when no part has any."""
    known = [p for p in parts if p is not None]
    if not known:
        return None
    sources: dict[str, SourceFacts] = {}
    for part in known:
        for source, facts in part.sources.items():
            have = sources.get(source)
            if have is None:
                sources[source] = facts
                continue
            spans = {c.chunk: c for c in (*have.chunks, *facts.chunks)}
            newer = facts if facts.newest > have.newest else have
            sources[source] = SourceFacts(newer.kind, newer.path, newer.header, newer.complete,
                                          tuple(spans[c] for c in sorted(spans)), furthest(have.blocks + facts.blocks),
                                          newer.tail)  # fmt: skip
    return Provenance(owner, sources)


def furthest(marks: Iterable[BlockMark]) -> tuple[BlockMark, ...]:
    """One mark per block: the furthest it was read (the most bytes; ended if any mark says so)."""
    best: dict[str, BlockMark] = {}
    for mark in marks:
        have = best.get(mark.block_id)
        if have is not None:
            mark = BlockMark(mark.block_id, have.start, max(have.bytes, mark.bytes), have.ended or mark.ended)
        best[mark.block_id] = mark
    return tuple(best[b] for b in sorted(best))


def from_schema(schema: pa.Schema) -> Provenance | None:
    """The provenance a file's schema carries; None when it has none, or one that cannot be read."""
    data = (schema.metadata or {}).get(KEY)
    if data is None:
        return None
    try:
        return Provenance.decode(data)
    except ValueError:
        return None


def stamped(table: pa.Table, provenance: Provenance | None) -> pa.Table:
    """`table` carrying `provenance` in its schema metadata (written into its Parquet file)."""
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != KEY}
    if provenance is not None:
        metadata[KEY] = provenance.encode()
    return table.replace_schema_metadata(metadata or None)


def carried(tables: Iterable[pa.Table], owner: tuple[str, int], merged: pa.Table) -> pa.Table:
    """`merged` (built from `tables`) carrying the union of their provenance, owned by `owner`."""
    return stamped(merged, union(owner, (from_schema(t.schema) for t in tables)))
