"""`synack check`: does a store's ledger agree with its files, and repairing what can be.

Checked, for an open (locked, recovered) store:

* the ledger itself (SQLite's quick_check);
* every record and quarantine file the ledger lists exists; a record file
  reads whole with every page's CRC32 checksum verified and holds the row
  count the ledger recorded;
* every partial aggregate's and monthly roll-up's two files exist, are
  readable and hold the rows the ledger recorded;
* no stray file: a Parquet file under conn/, aggregates/ or rollups/ that the ledger
  does not list (a copy, a leftover), or a temporary file;
* each day's row count equals the sum of its record files'.

Repair (`repair=True`) never deletes data: strays and damaged files are
moved under `damaged/` (with their relative path). The aggregates of a day
with a damaged partial are rebuilt from its records; a day whose record
file is damaged or missing loses that file's records (their count is
reported, the file's ledger entry removed), and its aggregates are rebuilt
from the records that are left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from synack.ingest.partials import AGGREGATES_DIR, KINDS, partial_path
from synack.ingest.rollups import ROLLUPS_DIR, rollup_path
from synack.ingest.store import CONN_DIR, QUARANTINE_DIR, Store
from synack.ingest.store_files import StoreFS

DAMAGED_DIR = "damaged"


@dataclass
class CheckReport:
    """What a check found (one line per problem) and what a repair did."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Findings:
    stray: list[PurePath] = field(default_factory=list)
    bad_records: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # path -> (day, rows, why)
    bad_partial_days: set[str] = field(default_factory=set)
    bad_rollups: set[str] = field(default_factory=set)  # months


def _verified_rows(files: StoreFS, path: PurePath) -> int:
    """Rows in the Parquet file at `path`, read whole with every page's CRC32
    verified (files written before page checksums pass on their structure
    alone); raises OSError or an Arrow error for a damaged file."""
    table = files.read_table(path, page_checksum_verification=True)
    return table.num_rows


def check_store(store: Store, *, repair: bool = False) -> CheckReport:
    """Check `store` (see the module); with `repair`, repair what can be."""
    report = CheckReport()
    db, root, files = store.ledger, store.root, store.files
    verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        report.problems.append(f"the ledger fails SQLite's check: {verdict}")
        return report  # nothing else can be trusted
    found = _Findings()
    listed: set[PurePath] = set()
    for rel, day, rows in db.execute("SELECT path, day, rows FROM files WHERE pending = 0"):
        path = root / rel
        listed.add(path)
        report.files_checked += 1
        why = _file_problem(files, path, rows if day is not None else None)
        if why:
            report.problems.append(f"{rel}: {why}")
            if day is not None:
                found.bad_records[rel] = (day, rows, why)
    pairs = [
        (partial_path, found.bad_partial_days, "SELECT day, name, server_rows, client_rows FROM partials"),
        (rollup_path, found.bad_rollups, "SELECT month, name, server_rows, client_rows FROM rollups"),
    ]
    for where, bad, query in pairs:
        for period, name, server_rows, client_rows in db.execute(query + " WHERE pending = 0"):
            for kind, rows in zip(KINDS, (server_rows, client_rows)):
                path = where(root, kind, period, name)
                listed.add(path)
                report.files_checked += 1
                why = _file_problem(files, path, rows)
                if why:
                    report.problems.append(f"{path.relative_to(root)}: {why}")
                    bad.add(period)
    for top in (CONN_DIR, AGGREGATES_DIR, ROLLUPS_DIR, QUARANTINE_DIR):
        for path in files.files_under(root / top):
            if path not in listed and (path.suffix in (".parquet", ".jsonl", ".tmp")):
                found.stray.append(path)
                report.problems.append(f"{path.relative_to(root)}: a file the ledger does not list")
    for day, recorded, summed in db.execute(
        "SELECT d.day, d.rows, COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = d.day), 0) FROM days d"
    ):
        if recorded != summed:
            report.problems.append(f"day {day}: the ledger counts {recorded} records, its files {summed}")
    if repair and report.problems:
        _repair(store, found, report)
    return report


def _file_problem(files: StoreFS, path: PurePath, rows: int | None) -> str:
    """Why the file at `path` is not as the ledger says ("" when it is);
    `rows` is the Parquet row count to expect (None: not a Parquet file)."""
    if not files.exists(path):
        return "missing"
    if rows is None:
        return ""
    try:
        found = _verified_rows(files, path)
    except Exception as err:  # noqa: BLE001 - any failure to read a footer is damage
        return f"unreadable ({' '.join(str(err).split())[:160]})"
    return "" if found == rows else f"holds {found} rows, the ledger says {rows}"


def _move_aside(files: StoreFS, path: PurePath) -> PurePath:
    target = files.root / DAMAGED_DIR / files.rel(path)
    files.move(path, target)
    files.sync_dirs([path.parent, target.parent])
    return target


def _repair(store: Store, found: _Findings, report: CheckReport) -> None:
    root, db = store.root, store.ledger
    for path in found.stray:
        target = _move_aside(store.files, path)
        report.repaired.append(f"moved {path.relative_to(root)} to {target.relative_to(root)}")
    days = set(found.bad_partial_days)
    for month in sorted(found.bad_rollups):
        with store.transaction(cleanup=[]):
            db.execute("DELETE FROM rollups WHERE month = ?", (month,))
        for path in store.files.files_under(root / ROLLUPS_DIR):
            if path.parent.name == f"month={month}" and path.suffix == ".parquet":
                _move_aside(store.files, path)
        report.repaired.append(f"moved the roll-up of {month} aside; it is redone from its days")
    for rel, (day, rows, _why) in sorted(found.bad_records.items()):
        if store.files.exists(root / rel):
            _move_aside(store.files, root / rel)
        with store.transaction(cleanup=[]):
            db.execute("DELETE FROM files WHERE path = ?", (rel,))
            db.execute("UPDATE days SET rows = rows - ? WHERE day = ?", (rows, day))
        report.repaired.append(
            f"lost the {rows} records of {rel} (moved aside, out of the ledger); the rest of day {day} is kept"
        )
        days.add(day)
    recount = db.execute(
        "SELECT d.day FROM days d WHERE d.rows != COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = d.day), 0)"
    ).fetchall()
    if recount:
        with store.transaction(cleanup=[]):
            db.executemany(
                "UPDATE days SET rows = COALESCE((SELECT SUM(rows) FROM files f WHERE f.day = days.day), 0) "
                "WHERE day = ?",
                recount,
            )
        report.repaired.append(f"recounted the records of {len(recount)} days from their files")
    if days:
        rebuilt = store.rebuild_aggregates(sorted(days))
        report.repaired.append(f"rebuilt the aggregates of {len(rebuilt)} days from their records")
    store.roll_up_months()
