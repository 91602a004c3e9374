"""The daily report as one self-contained HTML page.

No network fetches: styles, the table-sorting script and the SVG charts are
inline. Every value is HTML-escaped (log data is attacker-controlled: a
banner `<script>...` is shown as text); tables read fine without
JavaScript, and sort on a header click with it.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from synack.inventory.daily_report import SECTIONS, Report, age_text
from synack.inventory.export import printable
from synack.inventory.identities import folded

_LABELS = {
    "server_h": "server", "client_h": "client", "port_name": "IANA name", "services": "detected service",
    "first_seen": "first seen (UTC)", "last_seen": "last seen (UTC)", "connections": "connections",
    "server_reply": "server reply", "idle_days": "idle days", "also_served": "also served",
    "first_clients": "first clients", "notice_ts": "sensor notice (UTC)", "synack_seen": "SYN-ACK",
}  # fmt: skip

_STYLE = """
:root { --fg:#1b1f24; --muted:#5b6470; --line:#d8dde3; --accent:#0b5cad; --bg:#fff; --up:#a40e26; --down:#1a7f37; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 1rem; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: .2rem 0; } h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem;
  border-bottom: 2px solid var(--line); padding-bottom: .2rem; }
.meta { color: var(--muted); margin: 0 0 1rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: .6rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.card .n { font-size: 1.8rem; font-weight: 650; } .card .k { color: var(--muted); }
.card .d { font-size: .85rem; color: var(--muted); } .up { color: var(--up); } .down { color: var(--down); }
.wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f3f5f7; white-space: nowrap; } td.num, th.num { text-align: right; }
th[data-sort] { cursor: pointer; } th[data-sort]::after { content: " \\2195"; color: var(--muted); }
code { font: .85em ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all;
       display: inline-block; max-width: 40ch; }
.none { color: var(--muted); font-style: italic; }
.alert { background: #fde8e8; border: 2px solid #b42318; color: #7a1010; padding: .6rem .9rem;
  border-radius: 6px; font-weight: 600; margin: 0 0 1rem; }
.alert p { margin: .2rem 0; } .more { color: var(--muted); font-size: .9rem; }
svg { max-width: 100%; height: auto; } svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
footer { color: var(--muted); font-size: .8rem; margin-top: 2rem; }
@media print { body { max-width: none; font-size: 11px; } th[data-sort]::after { content: ""; }
  .wrap { overflow: visible; } }
"""

_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.setAttribute("data-sort", "");
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v") || a.cells[col].textContent;
        var y = b.cells[col].getAttribute("data-v") || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny) && String(nx) === x.trim() && String(ny) === y.trim()) return (nx - ny) * dir;
        return x.localeCompare(y) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
      th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
    });
  });
});
"""


#: Characters of text a report cell shows (the CSV beside it has the whole
#: value): one port with 200k clients naming 20 services each must not
#: make a page of tens of megabytes.
CELL_CHARS = 300


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _capped(text: str) -> str:
    """`text` cut to CELL_CHARS characters, saying how many it left out."""
    if len(text) <= CELL_CHARS:
        return text
    return f"{text[:CELL_CHARS]}… ({len(text) - CELL_CHARS:,} more characters in the CSV)"


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return "<td></td>"
    if isinstance(value, bytes):
        return f"<td><code>{_e(_capped(printable(value)))}</code></td>"
    if column == "synack_seen":
        return "<td>seen</td>" if value else '<td class="warn">SYN-ACK not seen</td>'
    if isinstance(value, pd.Timestamp):
        return f'<td data-v="{_e(value.isoformat())}">{value:%Y-%m-%d %H:%M:%S}</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{_e(value)}</td>'
    return f"<td>{_e(_capped(str(value)))}</td>"


def _table(df: pd.DataFrame, max_rows: int, csv_name: str, rows: int | None = None) -> str:
    """A sortable table of the first `max_rows` rows, saying how many more
    are in `csv_name` (of `rows` in all; default: those of `df`)."""
    if df.empty:
        return '<p class="none">none</p>'
    more = (len(df) if rows is None else rows) - max_rows
    view = folded(df.head(max_rows).copy())
    if "server_p" in view and "proto" in view:
        view.insert(list(view.columns).index("server_p"), "port", view["server_p"].astype(str) + "/" + view["proto"])
        view = view.drop(columns=["server_p", "proto"])
    head = "".join(
        f'<th class="num">{_e(_LABELS.get(c, c))}</th>'
        if pd.api.types.is_numeric_dtype(view[c]) and not pd.api.types.is_bool_dtype(view[c])
        else f"<th>{_e(_LABELS.get(c, c))}</th>"
        for c in view.columns
    )
    body = "".join(
        "<tr>" + "".join(_cell(c, v) for c, v in zip(view.columns, row)) + "</tr>"
        for row in view.itertuples(index=False)
    )
    note = f'<p class="more">{more} more in {_e(csv_name)}</p>' if more > 0 else ""
    return (
        f'<div class="wrap"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        + note
    )


def _bars(values: list[tuple[str, int | None]], *, width: int = 720, height: int = 180, label_every: int = 5,
          baseline: str | None = None) -> str:  # fmt: skip
    """A vertical bar chart as inline SVG; a None value (no data that day) is
    a grey gap, not a zero; the `baseline` day (the first with data) is drawn
    apart and labelled so, not as that many new ports."""
    if not values or all(v is None for _, v in values):
        return '<p class="none">no data in these days</p>'
    top = max(v or 0 for _, v in values)
    n = len(values)
    plot_h = height - 30
    bar_w = width / n
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="new server ports per day">']
    for i, (label, v) in enumerate(values):
        x = i * bar_w
        if v is None:
            parts.append(
                f'<rect x="{x + 1:.1f}" y="12" width="{max(bar_w - 2, 1):.1f}" height="{plot_h:.1f}" '
                f'fill="#eee" class="nodata"><title>{_e(label)}: no data</title></rect>'
            )
            continue
        h = 0 if top == 0 else plot_h * v / top
        first = label == baseline
        fill = "#9db7d5" if first else "#0b5cad"
        title = f"{v} ports seen on the first day of data (the baseline)" if first else str(v)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{plot_h - h + 12:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{fill}"><title>{_e(label)}: {_e(title)}</title></rect>'
        )
        if v:
            text = "baseline" if first else str(v)
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{plot_h - h + 9:.1f}" text-anchor="middle">{text}</text>')
        if i % label_every == 0 or i == n - 1:
            anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
            at = x if i == 0 else x + bar_w if i == n - 1 else x + bar_w / 2
            parts.append(f'<text x="{at:.1f}" y="{height - 2}" text-anchor="{anchor}">{_e(label[5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hbars(values: list[tuple[str, int]], *, width: int = 720) -> str:
    """A horizontal bar chart as inline SVG."""
    if not values:
        return '<p class="none">none</p>'
    top = max(v for _, v in values) or 1
    row, label_w = 22, 200
    height = row * len(values) + 4
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="servers per service">']
    for i, (label, v) in enumerate(values):
        w = (width - label_w - 40) * v / top
        y = i * row + 2
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label[:28])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="#0b5cad"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cards(report: Report) -> str:
    out = []
    base = f"the average of the {report.compared} previous {report.period_unit} with data"
    for name, (value, average) in report.headline.items():
        if report.health.baseline:
            trend = "first data of this store: the baseline, nothing to compare"
        elif average is None:
            trend = "no earlier data to compare"
        elif value > average:
            trend = f'<span class="up">&#9650; above</span> {base} ({average:.1f})'
        elif value < average:
            trend = f'<span class="down">&#9660; below</span> {base} ({average:.1f})'
        else:
            trend = f"same as {base} ({average:.1f})"
        out.append(f'<div class="card"><div class="n">{value}</div><div class="k">{_e(name)}</div>'
                   f'<div class="d">{trend}</div></div>')  # fmt: skip
    return f'<div class="cards">{"".join(out)}</div>'


def _answering(report: Report) -> str:
    """A line per host that answered every port in the period (its new ports are one row below)."""
    hosts = report.answering_all
    if hosts is None or hosts.empty:
        return ""
    lines = "".join(
        f"<li><code>{_e(h)}</code> answered on {n:,} TCP ports ({lo} to {hi}), {q:,} of them without a detected"
        " service or a reply: a SYN proxy, tarpit or honeypot answers every port</li>"
        for h, n, q, lo, hi in zip(
            hosts["server_h"], hosts["ports"], hosts["quiet_ports"], hosts["lowest_port"], hosts["highest_port"]
        )  # fmt: skip
    )
    return f'<div class="alert"><p>Hosts that answer every port:</p><ul>{lines}</ul></div>'


def _section(report: Report, name: str) -> str:
    """One table of the report as the page shows it (report.page: new server ports collapsed)."""
    view, rows = report.page(name)
    return _table(view.head(report.max_rows), report.max_rows, report.csv_name(name), rows)


def render_html(report: Report) -> str:
    """The report page as one string of HTML."""
    last = report.end - pd.Timedelta(microseconds=1)
    period = (
        f"{report.start:%Y-%m-%d}" if report.label == f"{report.start:%Y-%m-%d}"
        else f"{report.start:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
    )  # fmt: skip
    sections = "".join(
        f"<h2>{_e(title)}</h2>" + (_answering(report) if name == "new_servers" else "") + _section(report, name)
        for name, title in SECTIONS.items()
    )
    entries = "".join(f"<li><code>{_e(e)}</code></li>" for e in report.suppressed_by)
    suppressed = (
        f"<p>{report.suppressed} new server port(s) matched the allowlist of expected services and are not listed;"
        f" the entries that matched:</p><ul>{entries}</ul>"
        if report.suppressed
        else '<p class="none">none suppressed by the allowlist</p>'
    )
    problems = report.health.problems(report.end)
    alert = (
        '<div class="alert" id="health">' + "".join(f"<p>{_e(p[:1].upper() + p[1:])}.</p>" for p in problems) + "</div>"
        if problems
        else ""
    )
    newest = report.health.newest
    lag = (
        f"newest record {newest:%Y-%m-%d %H:%M} UTC ({age_text(report.end - newest)} before the period's end)"
        if newest is not None
        else "no records"
    )
    if report.health.new_sensors:
        names = ", ".join(report.health.new_sensors)
        lag += f" · first data from sensor {names}: its ports count as new here (its baseline)"
    first_day = report.new_per_day[0][0] if report.new_per_day else f"{report.start:%Y-%m-%d}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>synack report {_e(period)}</title>
<style>{_STYLE}</style></head>
<body>
{alert}<h1>synack daily report &mdash; {_e(period)}</h1>
<p class="meta">Period (UTC): {_e(report.start.isoformat())} &ndash; {_e(report.end.isoformat())} &middot;
sensors: {_e(", ".join(report.sensors))} &middot; networks: {_e(", ".join(report.nets))} &middot;
{_e(lag)} &middot; generated {_e(report.generated.strftime("%Y-%m-%d %H:%M UTC"))}</p>
{_cards(report)}
{sections}
<h2>New server ports per day, {first_day} to {last:%Y-%m-%d} (same filters; grey: no data)</h2>
{_bars(report.new_per_day, baseline=report.baseline_day)}
<h2>Servers per service</h2>
{_hbars(report.servers_per_service)}
<h2>Allowlist</h2>
{suppressed}
<footer>synack &middot; server ports answered a SYN with a SYN-ACK (or answered UDP); replies shown as printable
text with \\xNN escapes.</footer>
<script>{_SCRIPT}</script>
</body></html>
"""


def page_columns(page: str) -> str:
    """The section titles and column headings of a report page, one line per
    section ("title: heading, heading, ..."): what a screenshot of it shows,
    kept beside the README's screenshot so a test sees when they part."""
    import re

    lines = []
    for part in page.split("<h2>")[1:]:
        title = html.unescape(part.split("</h2>", 1)[0])
        table = part.split("</table>", 1)[0] if "<table" in part.split("<h2>", 1)[0] else ""
        heads = [html.unescape(h) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table)]
        lines.append(f"{title}: {', '.join(heads)}" if heads else title)
    return "\n".join(lines) + "\n"
