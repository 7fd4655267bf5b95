"""Fetcher limits against the real local server: timeouts, size caps, concurrency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import FetchResult, fetch_many

FetchOne = Callable[..., FetchResult]
Tune = Callable[..., CrawlConfig]


def test_read_timeout_is_retried_then_reported(server: Any, fetch_one: FetchOne, tune: Tune) -> None:
    result = fetch_one(server.url("/slow?delay=1.5"), tune(read_timeout_s=0.3, retries=1))
    assert not result.ok and result.reason == "timeout after 2 attempts" and result.attempts == 2
    assert result.elapsed_s < 1.5


def test_total_deadline_cuts_a_trickling_body(server: Any, fetch_one: FetchOne, tune: Tune) -> None:
    # every byte arrives well within the read timeout; only the per-attempt deadline can stop it
    result = fetch_one(server.url("/trickle?seconds=3"), tune(read_timeout_s=1.0, total_timeout_s=0.5, retries=0))
    assert not result.ok and result.reason == "timeout after 1 attempt"
    assert result.elapsed_s < 1.5


def test_declared_length_over_the_cap(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/big?n=5000"), max_bytes=1000)
    assert not result.ok and result.reason == "too large: > 1000 bytes" and result.http_status == 200
    assert result.body is None


def test_exactly_the_cap_is_accepted(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/big?n=1000"), max_bytes=1000)
    assert result.ok and result.body is not None and len(result.body) == 1000


def test_chunked_body_is_cut_while_streaming(server: Any, fetch_one: FetchOne, tune: Tune) -> None:
    # no Content-Length and ~400 MB on offer: only the streaming count can stop it
    result = fetch_one(server.url("/endless"), tune(max_bytes=64 * 1024))
    assert not result.ok and result.reason == f"too large: > {64 * 1024} bytes" and result.attempts == 1
    assert result.elapsed_s < 2.0


def test_gzip_bomb_is_cut_at_the_decoded_cap(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/gzip-bomb"), max_bytes=100_000)
    assert not result.ok and result.reason == "too large: > 100000 bytes"


def test_gzip_body_is_decoded(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/gzip-plot"))
    assert result.ok and result.body == b"A compressed plot."


def test_global_concurrency_is_bounded(server: Any, tune: Tune) -> None:
    server.state.reset_concurrency()
    urls = [server.url(f"/inflight?delay=0.25&global={i}") for i in range(12)]
    results = fetch_many(urls, config=tune(max_concurrency=4, per_host_concurrency=16))
    assert all(r.ok for r in results)
    assert 2 <= server.state.max_in_flight[""] <= 4


def test_per_host_concurrency_is_bounded(server: Any, tune: Tune) -> None:
    server.state.reset_concurrency()
    urls = [server.url(f"/inflight?delay=0.25&host={i}", host=h) for i in range(6) for h in ("127.0.0.1", "localhost")]
    config = tune(max_concurrency=3, per_host_concurrency=2, allow_hosts=("127.0.0.1", "localhost"))
    results = fetch_many(urls, config=config)
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    assert server.state.max_in_flight["127.0.0.1"] <= 2 and server.state.max_in_flight["localhost"] <= 2
    assert 2 <= server.state.max_in_flight[""] <= 3
