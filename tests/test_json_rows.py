"""JSON written column-wise (export.write_json_rows) is byte for byte what the stdlib encoder writes for `records`.

Before: `-f json`/`-f jsonl` and the report's JSON built a dict and called
the encoder per row: 74 s of the tarpit day's 160 s report (profiled).
"""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pandas as pd

from synack.inventory import export

NASTY = ['', 'plain', 'quote " here', "back\\slash", "new\nline", "tab\t", "\x1b[31mred", "bidi \u202e evil",
         "zero\u200bwidth", "é ü 中文", "emoji 😀", '=cmd|"/c calc"!A1', "\\u0041 not an escape",
         "\x7f\x85"]  # fmt: skip


def _frame(rng: random.Random, rows: int) -> pd.DataFrame:
    texts = [rng.choice(NASTY) if rng.random() > 0.1 else None for _ in range(rows)]
    times = pd.to_datetime([1795000000 * 10**6 + rng.randrange(10**12) for _ in range(rows)], unit="us", utc=True)
    if rows:
        times = times.where([rng.random() > 0.1 for _ in range(rows)])
    return pd.DataFrame({
        "server_h": pd.Series(texts, dtype="str"),
        "services": pd.Series(texts[::-1], dtype=object),
        "server_p": np.array([rng.randrange(65536) for _ in range(rows)], dtype="int64"),
        "answers_all": np.array([rng.random() > 0.5 for _ in range(rows)], dtype=bool),
        "first_seen": times,
        "idle_days": [rng.choice([1.0, 7.5, 1e-7, float("nan")]) for _ in range(rows)],
        "server_reply": [rng.choice([b"SSH-2.0\r\n\x00\xff", None, b""]) for _ in range(rows)],
        "counts": pd.array([rng.choice([1, None]) for _ in range(rows)], dtype="Int64"),
    })  # fmt: skip


def _stdlib_json(frames: list[pd.DataFrame]) -> str:
    encode = json.JSONEncoder(ensure_ascii=False).encode
    rows = [encode(r) for f in frames for r in export.records(f)]
    return "[" + ("\n" + ",\n".join(rows) if rows else "") + "\n]\n"


def _stdlib_jsonl(frames: list[pd.DataFrame]) -> str:
    encode = json.JSONEncoder(ensure_ascii=False).encode
    return "".join(encode(r) + "\n" for f in frames for r in export.records(f))


def test_json_and_json_lines_are_what_the_stdlib_writes() -> None:
    rng = random.Random(11)
    export_batch = export._BATCH
    try:
        export._BATCH = 7  # several batches a frame
        for sizes in ([0], [1], [5, 0, 9], [30], [3, 20, 1]):
            frames = [_frame(rng, n) for n in sizes]
            out = io.StringIO()
            assert export.write_json(frames, out) == sum(sizes)
            assert out.getvalue() == _stdlib_json(frames)
            json.loads(out.getvalue())
            out = io.StringIO()
            assert export.write_jsonl(frames, out) == sum(sizes)
            assert out.getvalue() == _stdlib_jsonl(frames)
    finally:
        export._BATCH = export_batch


def test_json_of_no_columns_and_of_hostile_text_parses_back() -> None:
    out = io.StringIO()
    export.write_jsonl([pd.DataFrame(index=range(3))], out)
    assert out.getvalue() == "{}\n{}\n{}\n"
    frame = pd.DataFrame({"t": pd.Series(NASTY, dtype="str")})
    out = io.StringIO()
    export.write_jsonl([frame], out)
    back = [json.loads(line)["t"] for line in out.getvalue().splitlines()]
    assert back == [export.visible(t) for t in NASTY]
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()


def test_csv_cells_are_the_visible_text_with_formulas_neutralized() -> None:
    """csv_table's text cells (clean columns passed through after one scan
    of their bytes, the others rewritten) are, value by value, `visible`
    text with a formula's first character guarded by a quote; slices of a
    bigger column (the CSV's batches) too."""
    from synack.ingest.visible import visible

    rng = random.Random(5)
    pool = NASTY + ["10.0.0.1", "-1", "+x", "@a", "a=b", "\r", "ok"]
    for trial in range(40):
        clean = trial % 2 == 0  # half the columns hold only printable ASCII without formulas
        choices = ["10.0.0.1", "ok", "a=b", ""] if clean else pool
        texts = [rng.choice(choices) if rng.random() > 0.1 else None for _ in range(rng.randrange(0, 60))]
        frame = pd.DataFrame({"server_h": pd.Series(texts, dtype="str")})
        start = rng.randrange(0, len(texts) + 1)
        for part in (frame, frame.iloc[start:]):
            got = export.csv_table(part).column("server_h").to_pylist()
            given = part["server_h"].astype(object).where(part["server_h"].notna(), None)
            guard = ("=", "+", "-", "@", "\t", "\r")
            want = [None if t is None else ("'" if visible(t)[:1] in guard else "") + visible(t) for t in given]
            assert got == want, (trial, part["server_h"].tolist())
