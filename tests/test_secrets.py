"""Credentials in a store URL never leave the process: every command, every
output format, every file synack writes shows the location redacted.

Before: `--store 's3://AKIAEXAMPLE:SUPERSECRET@bkt/prefix'` printed the
secret in error lines, in `status` and `status --json`, and in `watch`'s
start event.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synack.ingest.store_files import locate, location_secrets, scrubbed, shown_location
from tests.s3_server import S3Server, s3_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "zeek"
SECRET = "SUPERSECRET9x"
KEY = "AKIAEXAMPLE7"


def test_a_location_is_shown_without_its_credentials() -> None:
    url = f"s3://{KEY}:{SECRET}@bkt/prefix?endpoint_override=127.0.0.1:9&secret_key=QUERYSECRET&scheme=http"
    assert shown_location(url) == "s3://***@bkt/prefix"
    assert shown_location("/srv/st#ore?x=1 %41") == "/srv/st#ore?x=1 %41"  # a path is a path
    secrets = location_secrets(url)
    assert {SECRET, KEY, "QUERYSECRET"} <= set(secrets)
    assert SECRET not in scrubbed(f"boto says: {url} and {SECRET}", secrets)
    files = locate(f"s3://{KEY}:{SECRET}@bkt/prefix?endpoint_override=127.0.0.1:9&scheme=http", "/tmp/l.sqlite")
    assert SECRET not in str(files) and SECRET not in repr(files) and KEY not in repr(files)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "synack", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "XDG_STATE_HOME": str(cwd / "state")})  # fmt: skip
    return proc.stdout + proc.stderr + f"\n[exit {proc.returncode}]"


@pytest.mark.slow
def test_no_command_prints_or_writes_a_credential_of_the_store_url(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    url = s3.url(bucket, "store").replace("s3://", f"s3://{KEY}:{SECRET}@")
    ledger = tmp_path / "ledger.sqlite"
    store = ["--store", url, "--ledger", str(ledger)]
    outputs = {"ingest": _run("ingest", str(SAMPLES), *store, cwd=tmp_path)}
    assert "[exit 0]" in outputs["ingest"], outputs["ingest"]
    for fmt in ("table", "csv", "json", "jsonl", "parquet"):
        out = tmp_path / f"servers.{fmt}"
        outputs[f"servers -f {fmt}"] = _run("servers", *store, "--nets", "all", "-f", fmt, "-o", str(out),
                                            cwd=tmp_path)  # fmt: skip
    (tmp_path / "report").mkdir()
    for command in (["clients"], ["new-ports", "--since", "2026-11-20"], ["gone-ports"], ["closed"], ["status"],
                    ["status", "--json"], ["check"], ["rebuild"], ["watch", str(SAMPLES), "--once"],
                    ["report", "--date", "2026-11-21", "-o", str(tmp_path / "report")],
                    ["export-known", "-o", str(tmp_path / "known.tsv")]):  # fmt: skip
        outputs[" ".join(command[:2])] = _run(*command, *store, cwd=tmp_path)
    assert "[exit 0]" in outputs["status --json"] and "s3://***@" in outputs["status --json"]
    # Errors: a missing bucket, a foreign ledger, a crash file.
    wrong = url.replace(bucket, "no-such-bucket-x")
    outputs["wrong bucket"] = _run("servers", "--store", wrong, "--ledger", str(ledger), cwd=tmp_path)
    outputs["no ledger"] = _run("servers", "--store", url, cwd=tmp_path)
    outputs["fresh ledger"] = _run("ingest", str(SAMPLES), "--store", url, "--ledger", str(tmp_path / "x.sqlite"),
                                   cwd=tmp_path)  # fmt: skip
    assert "[exit 2]" in outputs["wrong bucket"] and "[exit 2]" in outputs["no ledger"]
    for name, text in outputs.items():
        assert SECRET not in text and KEY not in text, (name, text[-600:])
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in written) and (tmp_path / "known.tsv").exists()
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data and KEY.encode() not in data, path


def test_a_crash_file_never_holds_the_credentials_of_the_store_url(tmp_path: Path) -> None:
    url = f"s3://{KEY}:{SECRET}@bkt/prefix?endpoint_override=127.0.0.1:9&scheme=http"
    code = (
        "import sys\n"
        "from synack import cli\n"
        "def boom():\n"
        "    raise RuntimeError('failed on ' + sys.argv[2])\n"
        "cli.app = boom\n"
        "cli.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "--store", url], capture_output=True, text=True,
                          env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})  # fmt: skip
    assert proc.returncode == 2 and "internal error" in proc.stderr
    (crash,) = (tmp_path / "state" / "synack").iterdir()
    text = crash.read_text() + proc.stderr
    assert "failed on s3://" in text and SECRET not in text and KEY not in text
