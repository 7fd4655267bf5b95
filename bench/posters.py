"""Realistic posters for benchmarks: 300x450 JPEGs of ~30 KB with varied content, served from 127.0.0.1.

``jpeg_poster(i)`` draws a deterministic, distinct poster for every index (a colour gradient, shapes, a noisy
texture band and a title block, JPEG quality 85: about 25-35 KB, like real film posters at this size).
``PosterServer`` serves ``/<i>.jpg`` from a separate process with a set latency per request; its posters are
generated before it starts serving, so generation never counts against a crawl.
"""

from __future__ import annotations

import io
import multiprocessing
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import numpy as np

WIDTH, HEIGHT = 300, 450


def jpeg_poster(i: int, *, width: int = WIDTH, height: int = HEIGHT, quality: int = 85) -> bytes:
    """A distinct, deterministic poster JPEG for index ``i`` (about 30 KB at 300x450)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(i)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
    band = slice(int(height * 0.4), int(height * 0.8))
    pixels[band] += rng.normal(0, 32, (pixels[band].shape[0], width, 3))  # texture: what makes JPEGs heavy
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        box = (x0, y0, x0 + int(rng.integers(20, 160)), y0 + int(rng.integers(20, 160)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    draw.rectangle((20, height - 70, width - 20, height - 30), fill=(240, 240, 240))
    draw.text((30, height - 60), f"FEATURE No. {i}", fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _serve(port_queue: multiprocessing.Queue, n: int, latency_s: float, poster: Callable[[int], bytes]) -> None:
    posters = [poster(i) for i in range(n)]
    content_type = "image/png" if posters and posters[0].startswith(b"\x89PNG") else "image/jpeg"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            time.sleep(latency_s)
            try:
                body = posters[int(self.path.rsplit("/", 1)[-1].split(".")[0])]
            except (ValueError, IndexError):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 512
    port_queue.put(server.server_address[1])
    server.serve_forever()


class PosterServer:
    """``with PosterServer(n, latency_ms=20) as base: ...``: ``f"{base}/{i}.jpg"`` serves ``jpeg_poster(i)``
    (or ``poster(i)`` when given: a picklable function of the index)."""

    def __init__(self, n: int, *, latency_ms: float = 20.0, poster: Callable[[int], bytes] | None = None) -> None:
        self.n, self.latency_s, self.poster = n, latency_ms / 1000, poster or jpeg_poster
        self._process: multiprocessing.Process | None = None

    def __enter__(self) -> str:
        queue: multiprocessing.Queue = multiprocessing.Queue()
        self._process = multiprocessing.Process(
            target=_serve, args=(queue, self.n, self.latency_s, self.poster), daemon=True
        )
        self._process.start()
        return f"http://127.0.0.1:{queue.get(timeout=600)}"

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(10)
