"""A local HTTP server for the demo's rendered posters, so the crawler fetches them like any other URL."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT_PORT = 8765
log = logging.getLogger(__name__)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are counted by the crawler; no per-request log lines."""


def _bind(root: Path, host: str, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        log.warning("port %d is busy (%s); serving posters on a free port (their URLs change)", port, exc)
        return ThreadingHTTPServer((host, 0), handler)


@contextmanager
def serve_directory(root: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> Iterator[str]:
    """Serve ``root`` over HTTP on ``host`` for the duration of the block; yields the base URL.

    The port is fixed by default so poster URLs (and so item content hashes) stay stable between runs;
    when it is busy a free port is used instead.
    """
    root.mkdir(parents=True, exist_ok=True)
    server = _bind(root, host, port)
    thread = threading.Thread(target=server.serve_forever, name="demo-poster-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
