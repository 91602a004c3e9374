"""A real S3 API server process for the object-storage tests: moto's server
mode on a free loopback port (skipped cleanly when moto is not installed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow.fs as pafs
import pytest

#: Credentials moto accepts; set in the environment so worker processes inherit them.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "synack-test",
    "AWS_SECRET_ACCESS_KEY": "synack-test-secret",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # host:port

    def url(self, bucket: str, prefix: str) -> str:
        """The store URL of `bucket/prefix` on this server."""
        return f"s3://{bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http&region=us-east-1"

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http", region="us-east-1",
                                 allow_bucket_creation=True, allow_bucket_deletion=True)  # fmt: skip

    def new_bucket(self) -> str:
        name = f"synack-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start `moto_server` and wait until it answers; stop it after."""
    command = shutil.which("moto_server")
    if command is None:
        pytest.skip("moto's S3 server is not installed (pip install 'moto[server]')")
    for key, value in CREDENTIALS.items():
        os.environ.setdefault(key, value)
    port = _free_port()
    process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    server = S3Server(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
