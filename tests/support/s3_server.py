"""An S3 server on localhost for the tests: moto's, started once per test session.

Test modules that use it import its fixtures (``from s3_server import s3, s3_server``).
``s3`` is a fresh bucket per test. The server is moto's ``ThreadedMotoServer`` on a
free port of 127.0.0.1, so the tests reach no network; without moto installed (the
``test`` extra), they are skipped. It runs in a child process of its own: a client
that holds the GIL while it waits for an answer (the ``deltalake`` package does) would
otherwise wait forever for a server thread that needs the GIL to answer. The child
says ``ready`` once it listens, and stops when its standard input closes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
import pytest

__all__ = ["S3Bucket", "S3Server", "s3", "s3_server", "serving"]


@dataclass(frozen=True)
class S3Server:
    """Where the server listens, and the options that reach it."""

    endpoint: str
    """``127.0.0.1:<port>``."""

    @property
    def storage_options(self) -> dict[str, Any]:
        """pyarrow's ``S3FileSystem`` arguments for the server (any key is accepted)."""
        return {
            "endpoint_override": self.endpoint,
            "scheme": "http",
            "access_key": "testing",
            "secret_key": "testing",
            "region": "us-east-1",
        }

    @property
    def polars_options(self) -> dict[str, str]:
        """Polars' ``storage_options`` for the same server."""
        return {
            "aws_endpoint_url": f"http://{self.endpoint}",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        }

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(**self.storage_options, allow_bucket_creation=True)


@dataclass(frozen=True)
class S3Bucket:
    """A bucket of its own for one test."""

    server: S3Server
    name: str

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return self.server.storage_options

    @property
    def polars_options(self) -> dict[str, str]:
        return self.server.polars_options

    @property
    def filesystem(self) -> pafs.S3FileSystem:
        return self.server.filesystem()

    def objects(self) -> list[str]:
        """Every object's key in the bucket, sorted (what a reader of the bucket sees)."""
        listed = self.filesystem.get_file_info(pafs.FileSelector(self.name, recursive=True))
        prefix = f"{self.name}/"
        return sorted(i.path[len(prefix) :] for i in listed if i.type == pafs.FileType.File)

    def get(self, key: str) -> bytes:
        """The bytes of the object ``key`` (for Polars versions whose CSV reader needs
        fsspec's s3fs to read a URI)."""
        with self.filesystem.open_input_stream(f"{self.name}/{key}") as source:
            data: bytes = source.read()
        return data

    def put(self, key: str, data: bytes) -> str:
        """Write the object ``key``; its URI."""
        with self.filesystem.open_output_stream(f"{self.name}/{key}") as out:
            out.write(data)
        return self.uri(key)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()  # until the tests close it
server.stop()
"""


@contextlib.contextmanager
def serving(*, authenticate: bool = False) -> Iterator[S3Server]:
    """moto's S3 server in a child process on a free localhost port, while in the block.
    With ``authenticate``, it checks credentials, and refuses the ones the tests use
    (moto knows no key until one is made through its IAM)."""
    pytest.importorskip("moto.server", reason="the S3 tests need moto[server]")
    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0") if authenticate else None
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()  # blocks until the server listens (or the child died)
        assert line.strip() == "ready", f"the S3 server did not start (exit {child.poll()})"
        yield S3Server(f"127.0.0.1:{port}")
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free localhost port, for the whole session."""
    with serving() as server:
        yield server


@pytest.fixture
def s3(s3_server: S3Server) -> S3Bucket:
    """A new, empty bucket on the server."""
    bucket = S3Bucket(s3_server, f"t-{uuid.uuid4().hex[:16]}")
    s3_server.filesystem().create_dir(bucket.name)
    return bucket
