"""Inventories as fixed-width text for a terminal.

Built column by column (widths from the longest cell of each column), so a
table of ten thousand rows prints as fast as its CSV. Everything in a cell
may come from the network: a terminal sees only printable ASCII, every
other character escaped (`\\xNN`, `\\uNNNN`), so no control sequence gets
through.
"""

from __future__ import annotations

import pandas as pd

from synack.inventory.export import printable

#: Longest cell shown whole in a column that does not give way.
KEY_WIDTH = 39
#: Longest server reply kept before the table lays out.
REPLY_CHARS = 40
GAP = "  "
#: ASCII control characters, shown as \\xNN (the rest is escaped by the ASCII encoder).
_CONTROLS = str.maketrans({c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]})


def shown(text: str) -> str:
    """`text` as a terminal may print it: printable ASCII, the rest escaped."""
    if text.isascii() and text.isprintable():
        return text
    return text.encode("ascii", "backslashreplace").decode("ascii").translate(_CONTROLS)


def cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, ending in "…" when cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def cell_texts(column: pd.Series) -> pd.Series:
    """One column as the strings a table shows: times to the minute, bytes
    printable (cut at REPLY_CHARS), missing values empty, all escaped."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column.dt.strftime("%Y-%m-%d %H:%M").fillna("")
    distinct = {}
    for value in column.drop_duplicates():
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
            distinct[value] = ""
        elif isinstance(value, bytes):
            distinct[value] = cut(printable(value), REPLY_CHARS)
        else:
            distinct[value] = shown(str(value))
    return column.map(distinct).astype(object)


def column_widths(names: list[str], natural: list[int], width: int, flexible: dict[str, int]) -> list[int]:
    """Widths that fit `width` when they can: key columns keep their natural
    width (up to KEY_WIDTH); the `flexible` ones (name -> most) give way,
    in the order given, down to their heading."""
    widths = [min(n, flexible.get(name, KEY_WIDTH)) for name, n in zip(names, natural)]
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    for name in flexible:  # in the order given
        if excess <= 0 or name not in names:
            continue
        i = names.index(name)
        give = max(min(excess, widths[i] - len(name)), 0)
        widths[i] -= give
        excess -= give
    return widths


def render(view: pd.DataFrame, title: str, width: int, flexible: dict[str, int]) -> list[str]:
    """The lines of a table of `view`: title, heading, rule, one line per
    row; numeric columns right-aligned; no line wider than `width`."""
    names = [shown(str(c)) for c in view.columns]
    texts = [cell_texts(view[c]) for c in view.columns]
    natural = [max(len(name), int(t.str.len().max()) if len(t) else 0) for name, t in zip(names, texts)]
    widths = column_widths(names, natural, width, flexible)
    right = [pd.api.types.is_numeric_dtype(view[c]) and not pd.api.types.is_bool_dtype(view[c]) for c in view.columns]

    def line(cells: list[str]) -> str:
        padded = [cut(c, w).rjust(w) if r else cut(c, w).ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return cut(GAP.join(padded).rstrip(), width)

    columns = [t.tolist() for t in texts]
    rows = [line(list(cells)) for cells in zip(*columns)] if columns else []
    return [cut(shown(title), width), line(names), cut(GAP.join("─" * w for w in widths), width), *rows]
