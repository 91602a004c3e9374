"""`synack check`: does a store's ledger agree with its files, and repairing what can be.

Checked, for an open (locked, recovered) store:

* the ledger itself (SQLite's quick_check);
* every file the ledger lists (records, quarantine, notices, partial
  aggregates, monthly roll-ups) exists and holds the bytes the ledger
  recorded (size and CRC, for files written since ledger version 5); a
  Parquet file reads whole with every page's CRC32 checksum verified and
  holds the row count the ledger recorded;
* no stray file: a Parquet file under conn/, aggregates/ or rollups/ that the ledger
  does not list (a copy, a leftover), a temporary file, or a retired one
  the ledger no longer keeps;
* each day's row count equals the sum of its record files'.

Repair (`repair=True`) never deletes data: strays and damaged files are
moved under `damaged/` (with their relative path). The aggregates of a day
with a damaged partial are rebuilt from its records. A day whose record
file is damaged or missing loses that file's records (their count is
reported, the file's ledger entry removed); when the day's aggregates are
intact they are kept, so its servers, clients, counts and first sightings
still hold what the lost records said (those facts now rest on the
aggregates alone, and the repair says so: a range that cuts the day, or a
`synack rebuild` of it, answers from the records left); when they are
damaged too, they are rebuilt from the records left. A damaged notice or
identity file is moved aside and out of the ledger (its facts come back
by ingesting its log into a new store; the repair names the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from synack.ingest.chunk_files import CONN_DIR, QUARANTINE_DIR
from synack.ingest.partials import AGGREGATES_DIR
from synack.ingest.rollups import ROLLUPS_DIR, SIGHTINGS_DIR
from synack.ingest.sensor_notices import NOTICES_DIR
from synack.ingest.server_identity import IDENTITY_DIR
from synack.ingest.store import Store, move_aside
from synack.ingest.store_files import FileDamaged, FileStamp, StoreFS, retired_name


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
    bad_side: dict[str, int] = field(default_factory=dict)  # a damaged notice or identity file -> its rows


def check_store(store: Store, *, repair: bool = False) -> CheckReport:
    """Check `store` (see the module); with `repair`, repair what can be."""
    report = CheckReport()
    book, root, files = store.ledger, store.root, store.files
    verdict = book.quick_check()
    if verdict != "ok":
        report.problems.append(f"the ledger fails SQLite's check: {verdict}")
        return report  # nothing else can be trusted
    found = _Findings()
    listed: set[PurePath] = set()
    for f in book.file_rows(pending=False):
        path = root / f.path
        listed.add(path)
        report.files_checked += 1
        why = _file_problem(files, path, f.stamp, f.rows if path.suffix == ".parquet" else None)
        if why:
            report.problems.append(f"{f.path}: {why}")
            if f.day is not None:
                found.bad_records[f.path] = (f.day, f.rows, why)
            elif f.path.startswith((NOTICES_DIR + "/", IDENTITY_DIR + "/")):
                found.bad_side[f.path] = f.rows
    aggregates = [(p.day, p.paths(root), p.stamps(), (p.server_rows, p.client_rows), found.bad_partial_days)
                  for p in book.partials(pending=False)]  # fmt: skip
    aggregates += [(r.month, r.paths(root), r.stamps(), (r.server_rows, r.client_rows), found.bad_rollups)
                   for r in book.rollups().values()]  # fmt: skip
    for period, paths, stamps, rows, bad in aggregates:
        for path, stamp, count in zip(paths, stamps, rows):
            listed.add(path)
            report.files_checked += 1
            why = _file_problem(files, path, stamp, count)
            if why:
                report.problems.append(f"{files.rel(path)}: {why}")
                bad.add(period)
    retired = {retired_name(root / rel) for rel in book.retired()}
    for top in (CONN_DIR, AGGREGATES_DIR, ROLLUPS_DIR, SIGHTINGS_DIR, QUARANTINE_DIR, IDENTITY_DIR):
        for path in files.files_under(root / top):
            if path in listed or path in retired:
                continue
            if path.suffix in (".parquet", ".jsonl", ".tmp", ".retired"):
                found.stray.append(path)
                report.problems.append(f"{files.rel(path)}: a file the ledger does not list")
    for day, recorded, summed in book.miscounted_days():
        report.problems.append(f"day {day}: the ledger counts {recorded} records, its files {summed}")
    if repair and report.problems:
        _repair(store, found, report)
    return report


def _file_problem(files: StoreFS, path: PurePath, stamp: FileStamp | None, rows: int | None) -> str:
    """Why the file at `path` is not as the ledger says ("" when it is):
    its bytes against `stamp`, and (a Parquet file, `rows` given) every
    page's checksum and its row count."""
    try:
        if rows is None:
            files.verified_bytes(path, stamp)
        else:
            files.read_verified(path, stamp, rows)
    except FileNotFoundError:
        return "missing"
    except FileDamaged as err:
        return err.why
    except OSError as err:
        return f"unreadable ({err})"
    return ""


def _repair(store: Store, found: _Findings, report: CheckReport) -> None:
    root, book = store.root, store.ledger
    for path in found.stray:
        target = move_aside(store.files, path)
        report.repaired.append(f"moved {store.files.rel(path)} to {store.files.rel(target)}")
    days = set(found.bad_partial_days)
    for month in sorted(found.bad_rollups):
        rollup = book.rollups(month=month).get(month)
        with store.transaction(cleanup=[]):
            book.delete_rollup(month)
        for path in rollup.paths(root) if rollup is not None else []:
            if store.files.exists(path):
                move_aside(store.files, path)
        report.repaired.append(f"moved the roll-up of {month} aside; it is redone from its days")
    for rel, (day, rows, _why) in sorted(found.bad_records.items()):
        if store.files.exists(root / rel):
            move_aside(store.files, root / rel)
        with store.transaction(cleanup=[]):
            book.remove_files([rel])
            book.lose_day_rows(day, rows)
        if day in days:
            report.repaired.append(f"lost the {rows} records of {rel} (moved aside, out of the ledger); the rest "
                                   f"of day {day} is kept and its damaged aggregates are rebuilt from it")  # fmt: skip
        else:
            report.repaired.append(
                f"lost the {rows} records of {rel} (moved aside, out of the ledger); day {day}'s aggregates are "
                "intact and kept: its servers, clients and counts still include what those records said (now "
                "resting on the aggregates alone; a range that cuts the day, or `synack rebuild` of it, answers "
                "from the records left)"
            )
    for rel, rows in sorted(found.bad_side.items()):
        if store.files.exists(root / rel):
            move_aside(store.files, root / rel)
        with store.transaction(cleanup=[]):
            book.remove_files([rel])
        what = "identity facts" if rel.startswith(IDENTITY_DIR + "/") else "sensor notices"
        report.repaired.append(f"lost the {rows} {what} of {rel} (moved aside, out of the ledger; ingesting its "
                               "log into a new store gets them back)")  # fmt: skip
    recount = [day for day, _, _ in book.miscounted_days()]
    if recount:
        with store.transaction(cleanup=[]):
            book.recount_days(recount)
        report.repaired.append(f"recounted the records of {len(recount)} days from their files")
    if days:
        rebuilt = store.rebuild_aggregates(sorted(days))
        report.repaired.append(f"rebuilt the aggregates of {len(rebuilt)} days from their records")
    store.roll_up_months()
