"""An S3 endpoint on this machine, for the object-store benchmark and tests: moto's standalone S3 server.

The server runs in its own process: delta-rs holds the GIL during some calls (e.g. ``history``), so an
in-process (threaded) server would deadlock with it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_s3(*, startup_s: float = 30.0) -> Iterator[str]:
    """moto's S3 server on a free 127.0.0.1 port, stopped on exit.

    Args:
        startup_s: how long to wait for the server to answer.

    Yields:
        The endpoint URL, e.g. ``http://127.0.0.1:43123`` (plain HTTP).

    Raises:
        RuntimeError: the server exited or did not answer within ``startup_s``.
    """
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    command = [str(server)] if server.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def create_bucket(bucket: str, *, storage_options: dict[str, str]) -> None:
    """Create ``bucket`` on the endpoint that lake storage options name.

    Args:
        bucket: the bucket name.
        storage_options: ``aws_endpoint_url``, ``aws_access_key_id``, ``aws_secret_access_key`` and
            ``aws_region``, as a lake's ``[lake.storage_options]`` gives them.
    """
    import pyarrow.fs as pafs  # not at import: the benchmark's driver stays light

    endpoint = storage_options["aws_endpoint_url"]
    pafs.S3FileSystem(
        access_key=storage_options["aws_access_key_id"],
        secret_key=storage_options["aws_secret_access_key"],
        region=storage_options["aws_region"],
        endpoint_override=endpoint,
        scheme=endpoint.split("://", 1)[0],
        allow_bucket_creation=True,
    ).create_dir(bucket)


@contextlib.contextmanager
def s3_lake(path: str = "lake") -> Iterator[tuple[str, dict[str, str]]]:
    """A bucket on moto's S3 server (a subprocess on 127.0.0.1): (``s3://bench/<path>``, its storage options)."""
    with moto_s3() as endpoint:
        options = {
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench-secret",
            "aws_region": "us-east-1",
            "aws_endpoint_url": endpoint,
            "aws_allow_http": "true",
        }
        create_bucket("bench", storage_options=options)
        yield f"s3://bench/{path}", options
