"""The store's files: where they live (a local directory or an object-storage
prefix) and the only code that reads, writes, moves or deletes them.

A store is its Parquet files plus its ledger (SQLite). The files may live on
any file system pyarrow opens from a URL (`s3://bucket/prefix`, `gs://...`;
a URL's query options pass through, e.g. `?endpoint_override=host:port&scheme=http`
for an S3 API server other than AWS); the ledger always lives on local disk,
where SQLite's atomic commit holds: `ledger` names it (default: beside a
local store; a store on object storage needs one).

Every store file is written under `tmp_name(final)` (a leading dot, so
Parquet readers, Spark and DuckDB's `*.parquet` globs skip it), made durable,
and moved into place only after the ledger has recorded it. Locally the move
is a rename and the directories are fsynced; on object storage it is a
server-side copy, which makes the final object appear whole or not at all,
then the delete of the temporary one.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from synack.ingest.errors import StoreError
from synack.ingest.file_modes import FILE, make_dirs, open_new

LEDGER = "ledger.sqlite"
LOCK = "lock"


def io_error(err: OSError, store: object) -> str:
    """The one line for a failed read or write of a store file: the file, the store, what went wrong."""
    where = f"{err.filename}" if err.filename else "a file"
    return f"cannot write or read {where} of store {store}: {err.strerror or err}"


#: A location with a URL scheme (`s3://`, `gs://`, `file://`); anything else is a path, whatever it holds.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


#: Passes over a committed file's names before it is missing (see verified_bytes).
_NAME_PASSES = 2


def tmp_name(final: PurePath) -> PurePath:
    """The temporary name `final` is written under before it is committed."""
    return final.with_name("." + final.name + ".tmp")


def retired_name(final: PurePath) -> PurePath:
    """The hidden name a replaced file keeps until its grace period ends (see Store.retire):
    readers that list the store's folders (pyarrow, DuckDB's `*.parquet`, Spark) skip it."""
    return final.with_name("." + final.name + ".retired")


@dataclass(frozen=True)
class FileStamp:
    """What the ledger records of a written file to verify it on every read:
    its size and the CRC32 of all its bytes."""

    size: int
    crc: int

    @classmethod
    def of(cls, data: pa.Buffer | bytes) -> FileStamp:
        return cls(len(data), zlib.crc32(memoryview(data)))


class FileDamaged(StoreError):
    """A store file whose bytes are not those the ledger recorded (or that cannot be parsed)."""

    def __init__(self, path: PurePath, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


def _fsync(path: Path) -> None:
    """Make the file `path`, or the entries of directory `path`, durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parquet_bytes(table: pa.Table, **options: Any) -> pa.Buffer:
    """`table` as a Parquet file in memory (`pq.write_table(**options)`).

    Every page carries a CRC32 checksum (Parquet's page checksum), which
    readers verify. Arrow writes into its own buffer: a Python file object
    would take the GIL for every page, stalling the threads that parse
    meanwhile.
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, write_page_checksum=True, **options)
    return sink.getvalue()


def _write_local(path: Path, data: pa.Buffer | bytes, mode: int) -> None:
    """Write `data` to the local `path` (created with `mode`) and fsync it.
    Raises OSError naming `path`."""
    try:
        make_dirs(path.parent)
        fd = open_new(path, mode)
        with open(fd, "wb", closefd=True) as f:
            f.write(memoryview(data))
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        if err.filename is None:  # a full disk says so on write(), naming no file
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


#: Query options of a location whose values are credentials (secret_key, session_token, access_key, password...).
_CREDENTIAL_OPTION = re.compile(r"secret|token|passw|key|credential|signature", re.IGNORECASE)


def shown_location(location: str) -> str:
    """`location` as it may be shown anywhere (messages, tables, JSON, logs,
    crash files): a URL without its user info (`KEY:SECRET@` becomes
    `***@`) and without its query (options, keys among them). A path is
    shown as it is."""
    if not _URL.match(location):
        return location
    parts = urlsplit(location.split("?", 1)[0])
    netloc = parts.netloc if "@" not in parts.netloc else "***@" + parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def location_secrets(location: str) -> list[str]:
    """The credentials a location carries (its user info, the values of its
    credential options), to be scrubbed from any text that might quote it."""
    if not _URL.match(location):
        return []
    parts = urlsplit(location)
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [userinfo, *[unquote(p) for p in userinfo.split(":")]]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _CREDENTIAL_OPTION.search(k)]
    found += [quote(v, safe="") for v in found]
    return sorted({v for v in found if len(v) >= 4}, key=len, reverse=True)


def scrubbed(text: str, secrets: list[str]) -> str:
    """`text` with every one of `secrets` replaced by `***`."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


#: A narrowed read decodes whole only the row groups holding a kept row,
#: when they are at most this share of the file's (else it reads them all).
NARROW_SHARE = 0.5


def narrowed_read(data: pa.Buffer, options: dict[str, Any], narrow: pc.Expression) -> pa.Table | None:
    """`pq.read_table(data, **options)` (columns, filters, schema) decoding
    whole only the row groups where `narrow` (a test every row the filter
    keeps passes, on a column or two) holds for a row: its columns are read
    first, then the row groups holding a match, filtered. None when that
    saves nothing (under four row groups, or more than NARROW_SHARE of them
    match) or the file's columns are not those asked: read it whole."""
    filters = options.get("filters")
    if filters is None:
        return None
    parquet = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
    meta = parquet.metadata
    if meta.num_row_groups < 4:
        return None
    names = parquet.schema_arrow.names
    schema = options.get("schema")
    wanted = options.get("columns") or (schema.names if schema is not None else names)
    if any(c not in names for c in wanted):
        return None
    probe = parquet.read(columns=_named(names, narrow))
    kept = probe.append_column("__row", pa.array(np.arange(probe.num_rows))).filter(narrow).column("__row")
    ends = np.cumsum([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    groups = np.unique(np.searchsorted(ends, kept.to_numpy(), side="right"))
    if len(groups) > NARROW_SHARE * meta.num_row_groups:
        return None
    table = parquet.read_row_groups(groups.tolist(), columns=list(dict.fromkeys([*wanted, *_named(names, filters)])))
    table = table.filter(filters).select(wanted)
    if schema is not None:
        table = table.cast(pa.schema([schema.field(c) for c in wanted]))
    return table


def _named(names: list[str], expression: pc.Expression) -> list[str]:
    """The columns of `names` that `expression` refers to."""
    text = str(expression)
    return [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)]


@dataclass(frozen=True, eq=False)
class StoreFS:
    """Where one store's files and ledger are, and every operation on its files.

    `root` is a local `Path` for a store on disk, else the `PurePosixPath`
    of its prefix in `fs` (`bucket/prefix`). Paths handed to the methods are
    under `root` (`root / "conn" / ...`). Picklable: a worker process
    re-opens the file system from `location` with its own credentials.
    """

    location: str
    root: PurePath
    ledger: Path
    lock: Path
    fs: pafs.FileSystem | None  # None: the local file system, written with fsync

    @property
    def local(self) -> bool:
        return self.fs is None

    def __str__(self) -> str:
        return shown_location(self.location)

    def __repr__(self) -> str:
        return f"StoreFS({shown_location(self.location)!r}, ledger={str(self.ledger)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoreFS) and (self.location, self.ledger) == (other.location, other.ledger)

    def __hash__(self) -> int:
        return hash((self.location, self.ledger))

    def __reduce__(self) -> tuple[Any, ...]:
        return locate, (self.location, self.ledger if self._explicit_ledger else None)

    @property
    def _explicit_ledger(self) -> bool:
        return not (self.local and self.ledger == Path(self.root) / LEDGER)

    def resolved(self) -> StoreFS:
        """This store with its local paths absolute (for a process in another directory)."""
        if not self.local:
            return self
        return locate(str(Path(self.root).resolve()), self.ledger.resolve() if self._explicit_ledger else None)

    def rel(self, path: PurePath) -> str:
        """`path` relative to the root, as the ledger records it."""
        return path.relative_to(self.root).as_posix()

    # -- reading ------------------------------------------------------------

    def exists(self, path: PurePath) -> bool:
        if self.fs is None:
            return os.path.exists(path)
        return self.fs.get_file_info(str(path)).type != pafs.FileType.NotFound

    def files_under(self, top: PurePath) -> list[PurePath]:
        """Every file below directory `top`, recursively, sorted (none if it does not exist)."""
        if self.fs is None:
            base = Path(top)
            return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        infos = self.fs.get_file_info(pafs.FileSelector(str(top), recursive=True, allow_not_found=True))
        return sorted(PurePosixPath(i.path) for i in infos if i.type == pafs.FileType.File)

    def temporaries(self, top: PurePath) -> list[PurePath]:
        """The temporary files (`tmp_name`) anywhere below directory `top`."""
        if self.fs is None:
            return sorted(Path(top).rglob(".*.tmp"))
        return [p for p in self.files_under(top) if p.name.startswith(".") and p.name.endswith(".tmp")]

    def identity(self, path: PurePath) -> tuple[int, int, int]:
        """What tells one version of a file from another (files are replaced, never rewritten)."""
        if self.fs is None:
            stat = os.stat(path)
            return stat.st_ino, stat.st_mtime_ns, stat.st_size
        info = self.fs.get_file_info(str(path))
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(str(path))
        return 0, info.mtime_ns or 0, info.size or 0

    def read_bytes(self, path: PurePath) -> pa.Buffer:
        """All the bytes of one store file. Raises FileNotFoundError when it does not exist."""
        if self.fs is None:
            with open(path, "rb") as f:
                return pa.py_buffer(f.read())
        with self.fs.open_input_file(str(path)) as f:
            return f.read_buffer()

    def verified_bytes(self, path: PurePath, stamp: FileStamp | None) -> pa.Buffer:
        """The bytes of the committed file `path`, checked against `stamp`.

        A file committed but not yet moved into place is read under its
        temporary name, one a compaction replaced under its retired name
        (a reader's snapshot may be older than the compaction), so a reader
        never misses a file a writer moves. Raises FileNotFoundError when
        the file is under none of its names, FileDamaged when no name holds
        the recorded bytes. Without a stamp (a file written before stamps)
        the file at `path` is returned as it is (its pages' checksums and
        rows are checked when it is parsed).
        """
        if stamp is None:
            return self.read_bytes(path)
        found: list[str] = []
        # The names are tried in the order a file moves through them (temporary -> final -> retired);
        # a move between two tries can hide it from one pass, never from the next.
        for _ in range(_NAME_PASSES):
            for name in (path, tmp_name(path), retired_name(path)):
                try:
                    data = self.read_bytes(name)
                except FileNotFoundError:
                    continue
                if len(data) == stamp.size and zlib.crc32(memoryview(data)) == stamp.crc:
                    return data
                found.append(f"{len(data)} bytes" if len(data) != stamp.size else "a different checksum")
            if found:
                break
        if not found:
            raise FileNotFoundError(errno.ENOENT, "missing", str(path))
        raise FileDamaged(path, f"holds {found[0]} where the ledger recorded {stamp.size} bytes, CRC {stamp.crc:08x}")

    def read_verified(self, path: PurePath, stamp: FileStamp | None, rows: int | None = None, *,
                      narrow: pc.Expression | None = None, **options: Any) -> pa.Table:  # fmt: skip
        """`pq.read_table(**options)` of the committed file `path`, its bytes
        checked against `stamp` (verified_bytes), every page's checksum
        verified, and (without a filter) its row count checked against `rows`.
        With `narrow` (a test of few rows on a column the file is not sorted
        by, that every row the filter keeps passes), only the row groups
        holding such a row are decoded whole (narrowed_read). Raises
        FileNotFoundError or FileDamaged."""
        return self.parsed(path, self.verified_bytes(path, stamp), rows, narrow=narrow, **options)

    def parsed(self, path: PurePath, data: pa.Buffer, rows: int | None = None, *,
               narrow: pc.Expression | None = None, **options: Any) -> pa.Table:  # fmt: skip
        """read_verified's table from the verified bytes `data` of the file
        `path` (read once, parsed several times: a band at a time)."""
        try:
            table = narrowed_read(data, options, narrow) if narrow is not None else None
            if table is None:
                table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True, **options)
        except (pa.ArrowException, OSError, ValueError) as err:
            raise FileDamaged(path, f"unreadable ({' '.join(str(err).split())[:160]})") from None
        if rows is not None and options.get("filters") is None and table.num_rows != rows:
            raise FileDamaged(path, f"holds {table.num_rows} rows, the ledger says {rows}")
        return table

    def dataset(self, paths: Iterable[PurePath | str], **options: Any) -> ds.Dataset:
        """A Parquet dataset over store files (`ds.dataset` options)."""
        return ds.dataset([str(p) for p in paths], format="parquet", filesystem=self.fs, **options)

    # -- writing ------------------------------------------------------------

    def write_parquet(self, table: pa.Table, path: PurePath, **options: Any) -> FileStamp:
        """Write `table` to `path` durably (`pq.write_table` options), with
        page checksums; return the file's stamp for the ledger."""
        return self.write_bytes(path, parquet_bytes(table, **options))

    def write_bytes(self, path: PurePath, data: pa.Buffer | bytes, mode: int = FILE) -> FileStamp:
        """Write `data` to `path` durably (a local file gets `mode`, see
        ingest.file_modes); return its stamp. Raises OSError naming the file."""
        if self.fs is None:
            _write_local(Path(path), data, mode)
        else:
            with self.fs.open_output_stream(str(path)) as sink:
                sink.write(data)
        return FileStamp.of(data)

    def move(self, source: PurePath, target: PurePath) -> None:
        """Move `source` over `target`: atomic for readers of `target`.
        Call `sync_dirs` on the targets' directories once a batch is moved."""
        if self.fs is None:
            make_dirs(Path(target).parent)
            os.replace(source, target)
        else:
            self.fs.move(str(source), str(target))

    def sync_dirs(self, folders: Iterable[PurePath]) -> None:
        """Make moves and deletes in `folders` durable (object storage: already)."""
        if self.fs is None:
            for folder in set(folders):
                if os.path.isdir(folder):
                    _fsync(Path(folder))

    def remove(self, path: PurePath) -> None:
        """Delete `path` if it exists."""
        if self.fs is None:
            Path(path).unlink(missing_ok=True)
            return
        try:
            self.fs.delete_file(str(path))
        except FileNotFoundError:
            pass

    def remove_tree(self, top: PurePath) -> None:
        """Delete directory `top` and all below it, if it exists."""
        if self.fs is None:
            shutil.rmtree(top, ignore_errors=True)
        elif self.exists(top):
            self.fs.delete_dir(str(top))


def locate(store: StoreFS | str | PurePath, ledger: str | PurePath | None = None) -> StoreFS:
    """The StoreFS of `store` (a local directory, a `file://` URL, or an
    object-storage URL pyarrow opens) with its ledger at `ledger` (default:
    `store/ledger.sqlite` for a local store). A StoreFS is returned as is
    when no other ledger is asked for. Raises StoreError for a URL pyarrow
    cannot open, or an object store without a ledger."""
    if isinstance(store, StoreFS):
        if ledger is None or Path(ledger) == store.ledger:
            return store
        store = store.location
    location = str(store)
    fs: pafs.FileSystem | None = None
    if _URL.match(location) and not location.startswith("file://"):
        try:
            fs, prefix = pafs.FileSystem.from_uri(location)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
            why = scrubbed(str(err), location_secrets(location))
            raise StoreError(f"cannot open the store {shown_location(location)}: {why}") from None
        if isinstance(fs, pafs.LocalFileSystem):
            fs, root = None, PurePath(Path(prefix))
        else:
            root = PurePosixPath(prefix.rstrip("/"))
            if not root.parts:
                raise StoreError(f"the store {shown_location(location)} names no bucket")
    else:
        root = Path(urlsplit(location).path if location.startswith("file://") else location)
    if ledger is None:
        if fs is not None:
            raise StoreError(
                f"the store {shown_location(location)} is on object storage: pass --ledger PATH (a local file "
                "that keeps the store's ledger; env SYNACK_LEDGER)"
            )
        return StoreFS(str(root), root, Path(root) / LEDGER, Path(root) / LOCK, None)
    ledger_path = Path(ledger)
    if fs is None:  # the lock guards the store's directory, whichever ledger is named
        return StoreFS(str(root), root, ledger_path, Path(root) / LOCK, None)
    return StoreFS(location, root, ledger_path, ledger_path.with_name(ledger_path.name + ".lock"), fs)
