"""Benchmark: the poster crawl stage end to end on realistic posters, beside a plain fetch loop, in one run.

    .venv/bin/python -m bench.crawl_posters [--posters 2000] [--latency-ms 20] [--png]

A loopback HTTP server in a separate process (``bench.posters.PosterServer``) serves ``--posters`` distinct
300 x 450 JPEG posters (~28 KB, varied content; ``--png`` serves the old 855-byte PNGs instead) and adds
``--latency-ms`` to every request. The server's CPU is not the crawler's: "per core" below is counted from
``getrusage(RUSAGE_SELF)`` (user + system) of this process only. Contenders:

- ``sequential``: one ``httpx.Client``, one GET after another, nothing validated or stored (on the first
  ``--sequential`` posters: at 20 ms a request, the whole list would take minutes);
- ``fetch_only``: the crawler's fetcher alone (``fetch_many``: safety checks, limits, streaming caps), no
  decode, no store, no commit: what HTTP costs;
- ``crawl``: the crawl stage (``tasks.crawl.stage.crawl``) into an empty lake: fetch, full Pillow decode,
  sha256, content-addressed blob store (durable), Delta commits per chunk;
- ``recrawl``: the same crawl on the unchanged catalog (must make no requests).

Reports, per contender, posters per second of wall time and posters per CPU-second of this process
("per core"), and the crawl's CPU milliseconds per poster.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import polars as pl

import features
from bench.posters import PosterServer
from features import CommitInfo
from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import fetch_many
from tasks.crawl.stage import crawl

T = TypeVar("T")


def png_poster(i: int) -> bytes:
    """The old tiny poster: a 200 x 300 PNG of one colour with one distinct pixel (~855 bytes)."""
    from PIL import Image

    image = Image.new("RGB", (200, 300), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    image.putpixel((i % 200, (i // 200) % 300), (255, 255, 255))  # distinct bytes per poster
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measured(n: int, fn: Callable[[], T]) -> tuple[T, dict[str, float]]:
    """``fn()``'s value and its wall seconds, CPU seconds, posters/s and posters per CPU-second."""
    cpu0, start = _cpu_s(), time.perf_counter()
    value = fn()
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu0
    rates = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "posters_per_s": round(n / wall, 1)}
    return value, {**rates, "posters_per_cpu_s": round(n / cpu, 1) if cpu > 0 else float("inf")}


def _catalog(lake: Path, urls: list[str]) -> None:
    rows = pl.DataFrame(
        {
            "item_id": [f"b:{i}" for i in range(len(urls))],
            "source": "bench",
            "poster_url": urls,
            "content_hash": [str(i) for i in range(len(urls))],
            "ingested_at": datetime.now(UTC),
        }
    )
    features.upsert("items", rows, commit=CommitInfo(stage="bench"), lake=lake)


def _contenders(urls: list[str], sequential_n: int, work: Path) -> tuple[dict[str, dict[str, float]], int]:
    """The contenders' measurements, and the mean poster size in bytes."""
    with httpx.Client(timeout=30) as client:
        sizes, seq = _measured(sequential_n, lambda: [len(client.get(u).content) for u in urls[:sequential_n]])
    config = CrawlConfig(allow_hosts=("127.0.0.1",))
    fetched, fetch_only = _measured(len(urls), lambda: fetch_many(urls, config=config, keep_bodies=False))
    assert all(r.ok for r in fetched)
    _catalog(work / "lake", urls)
    summary, crawled = _measured(len(urls), lambda: crawl(lake=work / "lake", config=config))
    again, recrawl = _measured(len(urls), lambda: crawl(lake=work / "lake", config=config))
    assert summary.stored == len(urls) and again.requested == 0, (summary, again)
    measured = {"sequential": seq, "fetch_only": fetch_only, "crawl": crawled, "recrawl": recrawl}
    return measured, round(sum(sizes) / len(sizes))


def run(n: int, latency_ms: float, *, png: bool = False, sequential_n: int = 200) -> dict[str, object]:
    """Start the poster server, time the contenders side by side, return the numbers."""
    work = Path(tempfile.mkdtemp(prefix="mmcrs-crawl-bench-"))
    try:
        with PosterServer(n, latency_ms=latency_ms, poster=png_poster if png else None) as base:
            urls = [f"{base}/{i}.{'png' if png else 'jpg'}" for i in range(n)]
            measured, mean_bytes = _contenders(urls, min(sequential_n, n), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    crawled, sequential = measured["crawl"], measured["sequential"]
    return {
        "posters": n,
        "poster_kind": "png 200x300 (one colour)" if png else "jpeg 300x450 (bench.posters.jpeg_poster)",
        "latency_ms": latency_ms,
        "poster_bytes_mean": mean_bytes,
        "sequential_posters": min(sequential_n, n),
        "contenders": measured,
        "recrawl_requests": 0,  # asserted
        "crawl_cpu_ms_per_poster": round(1000 * crawled["cpu_s"] / n, 2),
        "crawl_over_sequential_wall": round(crawled["posters_per_s"] / sequential["posters_per_s"], 1),
        "target_posters_per_cpu_s": 150,
        "target_met": crawled["posters_per_cpu_s"] >= 150,
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main() -> None:
    """Command line entry point: prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--sequential", type=int, default=200, help="posters fetched by the sequential loop")
    parser.add_argument("--png", action="store_true", help="serve the old 855-byte PNG posters instead")
    args = parser.parse_args()
    print(json.dumps(run(args.posters, args.latency_ms, png=args.png, sequential_n=args.sequential), indent=2))


if __name__ == "__main__":
    main()
