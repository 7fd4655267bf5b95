"""A real HTTP server on 127.0.0.1 that misbehaves in every way the crawler must survive.

Routes (all answers are generated in memory; the server records hits per request target and the
most requests it ever had in flight, overall and per ``Host`` header):

- ``/poster.jpg|png|webp|gif``: small posters; ``/missing``: 404; ``/always/<status>``: that status.
- ``/flaky/<key>?fails=N&status=S``: S for the first N hits of that target, then a JPEG.
- ``/rate-limited/<key>?retry_after=S``: 429 with ``Retry-After: S`` once, then a JPEG.
- ``/slow?delay=S``: headers after S seconds; ``/trickle?seconds=S``: a byte every 0.1 s for S seconds.
- ``/big?n=N``: N bytes with ``Content-Length``; ``/endless``: chunked bytes until the client hangs up;
  ``/gzip-bomb``: 10 MiB of zeros gzip-compressed to a few KiB; ``/gzip-plot``: gzip-encoded text.
- ``/html-as-jpeg``, ``/truncated.jpg``, ``/bomb.png`` (20000 x 20000, 1-bit): bad images.
- ``/loop-a`` <-> ``/loop-b``: a redirect loop; ``/hops/<n>``: n redirects, then a JPEG;
  ``/redirect?to=<url>``: one redirect anywhere.
- ``/etag.jpg``: ETag ``"v1"`` and a Last-Modified date; 304 when either validator matches.
- ``/plot.txt``, ``/plot-latin1.txt``, ``/plot.html``, ``/plot.json``, ``/plot-nofield.json``: plot pages.
- ``/inflight?delay=S``: counts concurrent requests, holds each for S seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image, ImageDraw

from tasks.backoff import RetryBackoff
from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import Fetcher, FetchResult

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
PLOT_HTML = (
    "<html><head><title>Page title</title><style>p {color: red}</style></head><body>"
    "<script>var hidden = 1;</script><noscript>enable js</noscript>"
    "<h1>Heat</h1><p>A crew of   professional thieves&amp;a detective.</p></body></html>"
)


def make_png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of zeros: tiny on disk, ``width * height`` pixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def make_poster(fmt: str, size: tuple[int, int] = (48, 64)) -> bytes:
    """A small poster in a Pillow format."""
    image = Image.new("RGB", size, (30, 60, 200))
    ImageDraw.Draw(image).ellipse((8, 8, size[0] - 8, size[1] - 8), fill=(240, 200, 20))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@dataclass
class ServerState:
    """What the server saw, shared with the tests."""

    hits: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)  # per Host header, "" = overall
    max_in_flight: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, host: str) -> None:
        with self.lock:
            for key in ("", host):
                self.in_flight[key] += 1
                self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])

    def leave(self, host: str) -> None:
        with self.lock:
            for key in ("", host):
                self.in_flight[key] -= 1

    def reset_concurrency(self) -> None:
        with self.lock:
            self.in_flight.clear()
            self.max_in_flight.clear()


@dataclass
class Assets:
    posters: dict[str, bytes]
    bomb: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
    state: ServerState
    assets: Assets

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):  # clients giving up (timeouts, caps) is expected
            super().handle()

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _jpeg(self) -> None:
        self._send(200, self.assets.posters["JPEG"], "image/jpeg")

    def _redirect(self, location: str) -> None:
        self._send(302, b"", Location=location)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.state.lock:
            self.state.hits[self.path] += 1
            hits = self.state.hits[self.path]
        segments = parts.path.strip("/").split("/")
        route = getattr(self, "route_" + segments[0].replace("-", "_").replace(".", "_"), None)
        if route is None:
            self._send(404, b"not found")
            return
        route(segments[1:], query, hits)

    # --- posters and statuses -------------------------------------------------------------------------
    def _poster(self, fmt: str, mime: str) -> None:
        self._send(200, self.assets.posters[fmt], mime)

    def route_poster_jpg(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._poster("JPEG", "image/jpeg")

    def route_poster_png(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._poster("PNG", "image/png")

    def route_poster_webp(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._poster("WEBP", "image/webp")

    def route_poster_gif(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._poster("GIF", "image/gif")

    def route_always(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(int(rest[0]), b"nope")

    def route_flaky(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        if hits <= int(query.get("fails", "1")):
            self._send(int(query.get("status", "500")), b"try again")
        else:
            self._jpeg()

    def route_rate_limited(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        if hits == 1:
            self._send(429, b"slow down", Retry_After=query.get("retry_after", "1"))
        else:
            self._jpeg()

    # --- time and size ----------------------------------------------------------------------------------
    def route_slow(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        time.sleep(float(query.get("delay", "1")))
        self._jpeg()

    def route_trickle(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        ticks = int(float(query.get("seconds", "3")) * 10)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(ticks))
        self.end_headers()
        for _ in range(ticks):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.1)

    def route_big(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, b"\x00" * int(query["n"]), "application/octet-stream")

    def route_endless(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b"\xff" * 4096
        for _ in range(100_000):  # ~400 MB if nobody stopped reading
            self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
        self.wfile.write(b"0\r\n\r\n")

    def route_gzip_bomb(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, gzip.compress(b"\x00" * (10 * 1024 * 1024)), "image/jpeg", Content_Encoding="gzip")

    def route_gzip_plot(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, gzip.compress(b"A compressed plot."), "text/plain", Content_Encoding="gzip")

    # --- bad images -------------------------------------------------------------------------------------
    def route_html_as_jpeg(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, b"<html><body>Access denied</body></html>", "image/jpeg")

    def route_truncated_jpg(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        jpeg = self.assets.posters["JPEG"]
        self._send(200, jpeg[: len(jpeg) // 2], "image/jpeg")

    def route_bomb_png(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, self.assets.bomb, "image/png")

    # --- redirects and validators -----------------------------------------------------------------------
    def route_loop_a(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._redirect("/loop-b")

    def route_loop_b(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._redirect("/loop-a")

    def route_hops(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        left = int(rest[0])
        if left == 0:
            self._jpeg()
        else:
            self._redirect(f"/hops/{left - 1}")

    def route_redirect(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._redirect(query["to"])

    def route_etag_jpg(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        validators = {"ETag": '"v1"', "Last_Modified": LAST_MODIFIED}
        if self.headers.get("If-None-Match") == '"v1"' or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
            self.send_response(304)
            for name, value in validators.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            return
        self._send(200, self.assets.posters["JPEG"], "image/jpeg", **validators)

    # --- plots ------------------------------------------------------------------------------------------
    def route_plot_txt(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, b"  Neil McCauley plans one last heist.\n", "text/plain; charset=utf-8")

    def route_plot_latin1_txt(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, "Amélie changes lives.".encode("latin-1"), "text/plain; charset=ISO-8859-1")

    def route_plot_html(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, PLOT_HTML.encode(), "text/html; charset=utf-8")

    def route_plot_json(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, b'{"title": "Heat", "plot": "A detective hunts a thief."}', "application/json")

    def route_plot_nofield_json(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        self._send(200, b'{"title": "Heat"}', "application/json")

    # --- concurrency ------------------------------------------------------------------------------------
    def route_inflight(self, rest: list[str], query: dict[str, str], hits: int) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        self.state.enter(host)
        try:
            time.sleep(float(query.get("delay", "0.3")))
        finally:
            self.state.leave(host)
        self._send(200, b"done")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # aborted clients are expected
        pass


@dataclass
class PosterServer:
    """The running server: its base URL, port, state and the bytes it serves."""

    port: int
    state: ServerState
    assets: Assets

    def url(self, target: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{target}"

    def hits(self, target: str) -> int:
        with self.state.lock:
            return self.state.hits[target]


@pytest.fixture(scope="session")
def make_bomb() -> Callable[[int, int], bytes]:
    """``make_png_bomb`` for tests that need other sizes."""
    return make_png_bomb


@pytest.fixture(scope="session")
def png_bomb() -> bytes:
    """A 20000 x 20000 PNG (400 million pixels, about 50 KB on disk)."""
    return make_png_bomb(20000, 20000)


@pytest.fixture(scope="session")
def posters() -> dict[str, bytes]:
    """Small posters by Pillow format name."""
    return {fmt: make_poster(fmt) for fmt in ("JPEG", "PNG", "WEBP", "GIF")}


@pytest.fixture(scope="session")
def server(posters: dict[str, bytes], png_bomb: bytes) -> Iterator[PosterServer]:
    """The misbehaving HTTP server, on an ephemeral port of 127.0.0.1, for the whole session."""
    state, assets = ServerState(), Assets(posters=posters, bomb=png_bomb)
    handler = type("Handler", (_Handler,), {"state": state, "assets": assets})
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield PosterServer(port=httpd.server_address[1], state=state, assets=assets)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def config() -> CrawlConfig:
    """A policy for the local server: 127.0.0.1 allowed, short timeouts, tiny backoff."""
    return CrawlConfig(
        allow_hosts=("127.0.0.1",),
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        total_timeout_s=5.0,
        retry=RetryBackoff(backoff_base_s=0.01, backoff_max_s=0.05),
    )


@pytest.fixture
def fetch_one(config: CrawlConfig) -> Callable[..., FetchResult]:
    """Fetch one URL through a fresh ``Fetcher``: ``fetch_one(url, config=None, **fetch_kwargs)``."""

    def run(url: str, config_: CrawlConfig | None = None, **kwargs: Any) -> FetchResult:
        async def go() -> FetchResult:
            async with Fetcher(config_ or config) as fetcher:
                return await fetcher.fetch(url, **kwargs)

        return asyncio.run(go())

    return run


@pytest.fixture
def tune(config: CrawlConfig) -> Callable[..., CrawlConfig]:
    """The test policy with some fields changed: ``tune(read_timeout_s=0.3, retries=0)`` (the fields of
    ``RetryBackoff`` change ``config.retry``)."""

    def run(**changes: Any) -> CrawlConfig:
        retry = {key: changes.pop(key) for key in list(changes) if key in RetryBackoff.__dataclass_fields__}
        return replace(config, retry=replace(config.retry, **retry), **changes)

    return run
