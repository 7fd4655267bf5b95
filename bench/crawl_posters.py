"""Benchmark: the poster crawler against a sequential fetch loop, side by side in one run.

    .venv/bin/python -m bench.crawl_posters [--posters 2000] [--latency-ms 20]

A loopback HTTP server in a separate process serves ``--posters`` distinct small PNG posters and adds
``--latency-ms`` of latency to every request. Contenders:
- ``sequential``: one ``httpx.Client``, one GET after another (no validation, nothing stored);
- ``crawl``: the crawl stage (``tasks.crawl.stage.crawl``) into an empty lake: bounded concurrent
  fetches, full Pillow decode of every poster, content-addressed blob store, Delta commits;
- ``fetch_only``: the crawler's fetcher alone (``fetch_many``, same limits): no decode, no store, no commit;
  it shows how much of the crawl's time is HTTP client overhead;
- ``recrawl``: the same crawl again on the unchanged catalog (must make no requests).
Reports posters/s, the ratio crawl/sequential, and CPU time per poster of the crawl and of the fetcher.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import platform
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import polars as pl

import features
from features import CommitInfo
from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import fetch_many
from tasks.crawl.stage import crawl


def _poster(i: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (200, 300), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    image.putpixel((i % 200, (i // 200) % 300), (255, 255, 255))  # distinct bytes per poster
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _serve(port_queue: multiprocessing.Queue, n: int, latency_s: float) -> None:
    posters = [_poster(i) for i in range(n)]
    hits = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            time.sleep(latency_s)
            hits["n"] += 1
            body = posters[int(self.path.rsplit("/", 1)[-1].split(".")[0])]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
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


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _catalog(lake: Path, urls: list[str]) -> None:
    now = datetime.now(UTC)
    rows = pl.DataFrame(
        {
            "item_id": [f"b:{i}" for i in range(len(urls))],
            "source": "bench",
            "poster_url": urls,
            "content_hash": [str(i) for i in range(len(urls))],
            "ingested_at": now,
        }
    )
    features.upsert("items", rows, commit=CommitInfo(stage="bench"), lake=lake)


def run(n: int, latency_ms: float) -> dict[str, object]:
    """Start the server, time both contenders, return the numbers."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(queue, n, latency_ms / 1000), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{queue.get(timeout=60)}"
    urls = [f"{base}/posters/{i}.png" for i in range(n)]
    work = Path(tempfile.mkdtemp(prefix="mmcrs-crawl-bench-"))
    try:
        start = time.perf_counter()
        with httpx.Client(timeout=30) as client:
            sizes = [len(client.get(u).content) for u in urls]
        sequential = time.perf_counter() - start
        _catalog(work / "lake", urls)
        config = CrawlConfig(allow_hosts=("127.0.0.1",))
        cpu0, start = _cpu_s(), time.perf_counter()
        fetched = fetch_many(urls, config=config, keep_bodies=False)
        fetch_s, fetch_cpu = time.perf_counter() - start, _cpu_s() - cpu0
        assert all(r.ok for r in fetched)
        cpu0, start = _cpu_s(), time.perf_counter()
        summary = crawl(lake=work / "lake", config=config)
        crawl_s, cpu = time.perf_counter() - start, _cpu_s() - cpu0
        start = time.perf_counter()
        again = crawl(lake=work / "lake", config=config)
        recrawl_s = time.perf_counter() - start
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    assert summary.stored == n and again.requested == 0, (summary, again)
    return {
        "posters": n,
        "latency_ms": latency_ms,
        "poster_bytes_mean": round(sum(sizes) / n),
        "sequential_s": round(sequential, 2),
        "fetch_only_s": round(fetch_s, 2),
        "crawl_s": round(crawl_s, 2),
        "recrawl_s": round(recrawl_s, 3),
        "posters_per_s": {
            "sequential": round(n / sequential, 1),
            "fetch_only": round(n / fetch_s, 1),
            "crawl": round(n / crawl_s, 1),
        },
        "speedup_crawl_over_sequential": round(sequential / crawl_s, 1),
        "speedup_fetch_only_over_sequential": round(sequential / fetch_s, 1),
        "crawl_cpu_ms_per_poster": round(1000 * cpu / summary.stored, 2),
        "fetch_only_cpu_ms_per_poster": round(1000 * fetch_cpu / n, 2),
        "recrawl_requests": again.requested,
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main() -> None:
    """Command line entry point: prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(run(args.posters, args.latency_ms), indent=2))


if __name__ == "__main__":
    main()
