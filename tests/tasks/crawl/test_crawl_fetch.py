"""Fetcher behaviour against the real local server: statuses, retries, redirects, conditional requests."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tasks.crawl import fetch as fetch_module
from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import Fetcher, FetchRequest, FetchResult, fetch_all, fetch_chunks, fetch_many
from tasks.crawl.images import ImageInfo, validate_image

FetchOne = Callable[..., FetchResult]
Tune = Callable[..., CrawlConfig]


@pytest.mark.parametrize(
    ("target", "mime", "fmt"),
    [
        ("/poster.jpg", "image/jpeg", "JPEG"),
        ("/poster.png", "image/png", "PNG"),
        ("/poster.webp", "image/webp", "WEBP"),
    ],
)
def test_posters_are_fetched_and_valid(
    server: Any, fetch_one: FetchOne, config: CrawlConfig, target: str, mime: str, fmt: str
) -> None:
    result = fetch_one(server.url(target))
    assert result.ok and result.reason is None
    assert (result.http_status, result.content_type, result.attempts) == (200, mime, 1)
    assert result.body == server.assets.posters[fmt]
    assert result.final_url == server.url(target)
    info = validate_image(result.body or b"", config=config)
    assert isinstance(info, ImageInfo) and (info.format, info.width, info.height) == (fmt, 48, 64)


def test_404_is_final_and_not_retried(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/missing?case=404"))
    assert not result.ok
    assert (result.reason, result.http_status, result.attempts, result.body) == ("HTTP 404", 404, 1, None)
    assert server.hits("/missing?case=404") == 1


def test_500_then_200_is_retried(server: Any, fetch_one: FetchOne) -> None:
    target = "/flaky/five-hundred-once?fails=1&status=500"
    result = fetch_one(server.url(target))
    assert result.ok and result.http_status == 200 and result.attempts == 2
    assert server.hits(target) == 2


def test_persistent_500_gives_up_after_all_attempts(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/always/500?case=give-up"))
    assert not result.ok
    assert (result.reason, result.http_status, result.attempts) == ("HTTP 500 after 4 attempts", 500, 4)
    assert server.hits("/always/500?case=give-up") == 4


def test_429_honours_retry_after(server: Any, fetch_one: FetchOne) -> None:
    target = "/rate-limited/honoured?retry_after=1"
    result = fetch_one(server.url(target))
    assert result.ok and result.attempts == 2
    assert result.elapsed_s >= 0.95  # waited what the server asked, not the 10 ms backoff
    assert server.hits(target) == 2


def test_retry_after_is_capped(server: Any, fetch_one: FetchOne, tune: Tune) -> None:
    result = fetch_one(server.url("/rate-limited/capped?retry_after=30"), tune(retry_after_max_s=0.2))
    assert result.ok and result.attempts == 2
    assert 0.15 <= result.elapsed_s < 2.0


def test_connection_errors_are_retried(fetch_one: FetchOne, tune: Tune) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch_one(f"http://127.0.0.1:{port}/poster.jpg", tune(retries=1))
    assert not result.ok and result.attempts == 2
    assert result.reason is not None
    assert result.reason.startswith("connection error (ConnectError") and result.reason.endswith("after 2 attempts")


def test_redirects_are_followed(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/hops/3"))
    assert result.ok and result.final_url == server.url("/hops/0") and result.attempts == 4


def test_too_many_redirects(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/hops/9"))
    assert not result.ok and result.reason == "too many redirects (> 5)" and result.attempts == 6


def test_redirect_loop_is_detected(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/loop-a"))
    assert not result.ok
    assert result.reason == f"redirect loop: {server.url('/loop-a')}"
    assert result.attempts == 2


def test_redirect_to_a_refused_host_is_blocked(server: Any, fetch_one: FetchOne) -> None:
    target = server.url("/poster.jpg?via=redirect", host="localhost")
    result = fetch_one(server.url(f"/redirect?to={target}"))
    assert not result.ok and result.attempts == 1
    # "localhost" is 127.0.0.1 here; where it also resolves to ::1, either address may be named
    assert re.fullmatch(
        rf"blocked address: (127\.0\.0\.1|::1) is loopback after redirect to {re.escape(target)}", result.reason or ""
    )
    assert server.hits("/poster.jpg?via=redirect") == 0


def test_credentials_in_a_url_or_a_redirect_are_refused_and_never_shown(server: Any, fetch_one: FetchOne) -> None:
    password = "pw-redirect-81c0a4"
    direct = fetch_one(server.url("/poster.jpg?via=creds", host=f"eve:{password}@127.0.0.1"))
    assert not direct.ok and direct.reason == "credentials in URL (user:password@) not allowed"
    assert server.hits("/poster.jpg?via=creds") == 0
    target = server.url("/poster.jpg?via=redirect-creds", host=f"eve:{password}@127.0.0.1")
    redirected = fetch_one(server.url(f"/redirect?to={target}"))
    assert not redirected.ok and server.hits("/poster.jpg?via=redirect-creds") == 0
    assert redirected.reason == (
        "credentials in URL (user:password@) not allowed after redirect to "
        + server.url("/poster.jpg?via=redirect-creds", host="***@127.0.0.1")
    )
    shown = [direct.reason, direct.final_url, redirected.reason, redirected.final_url]  # url: the caller's own
    assert password not in repr(shown)


def test_redirect_to_a_local_file_is_refused(server: Any, fetch_one: FetchOne, tune: Tune, tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    result = fetch_one(server.url(f"/redirect?to={secret.as_uri()}"), tune(file_root=str(tmp_path)))
    assert not result.ok
    assert result.reason is not None
    assert result.reason.startswith("scheme not allowed: file after redirect to file:")
    assert result.reason.endswith("/secret.txt")


def test_conditional_request_gets_304(server: Any, fetch_one: FetchOne) -> None:
    first = fetch_one(server.url("/etag.jpg"))
    assert first.ok and not first.not_modified and first.etag == '"v1"' and first.last_modified
    again = fetch_one(server.url("/etag.jpg"), etag=first.etag)
    assert again.ok and again.not_modified and again.body is None and again.http_status == 304
    by_date = fetch_one(server.url("/etag.jpg"), last_modified=first.last_modified)
    assert by_date.ok and by_date.not_modified
    changed = fetch_one(server.url("/etag.jpg"), etag='"v0"')
    assert changed.ok and not changed.not_modified and changed.body == server.assets.posters["JPEG"]


def test_default_policy_refuses_the_local_server(server: Any, fetch_one: FetchOne) -> None:
    result = fetch_one(server.url("/poster.jpg?policy=default"), CrawlConfig())
    assert not result.ok and result.reason == "blocked address: 127.0.0.1 is loopback"
    assert result.attempts == 0 and server.hits("/poster.jpg?policy=default") == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty URL"),
        ("ftp://example.com/a.jpg", "scheme not allowed: ftp"),
        ("data:image/png;base64,AAAA", "scheme not allowed: data"),
        ("http:///poster.jpg", "missing host"),
        ("posters/a.jpg", "local files not allowed: no file_root configured"),
    ],
)
def test_bad_urls_become_results(fetch_one: FetchOne, url: str, reason: str) -> None:
    result = fetch_one(url)
    assert not result.ok and result.reason == reason and result.attempts == 0


def test_unexpected_errors_become_results(server: Any, fetch_one: FetchOne, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(fetch_module, "read_capped", broken)
    result = fetch_one(server.url("/poster.jpg"))
    assert not result.ok and result.reason == "unexpected error: RuntimeError: boom"


def test_fetch_outside_async_with_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(Fetcher().fetch("http://example.com/"))


def test_fetch_many_keeps_order_and_reports_each_result(server: Any, config: CrawlConfig) -> None:
    requests = [
        server.url("/poster.png"),
        (server.url("/missing?case=many"), None, None),
        FetchRequest(server.url("/etag.jpg"), etag='"v1"'),
        FetchRequest(server.url("/big?n=5000"), max_bytes=100),
    ]
    seen: list[FetchResult] = []
    results = fetch_many(requests, config=config, on_result=seen.append, keep_bodies=False)
    assert [r.url for r in results] == [
        server.url(p) for p in ("/poster.png", "/missing?case=many", "/etag.jpg", "/big?n=5000")
    ]
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[2].not_modified and results[3].reason == "too large: > 100 bytes"
    assert all(r.body is None for r in results)  # keep_bodies=False
    assert len(seen) == 4 and any(r.body == server.assets.posters["PNG"] for r in seen)


def test_fetch_all_runs_inside_a_running_loop_and_fetch_many_too(server: Any, config: CrawlConfig) -> None:
    async def main() -> tuple[list[FetchResult], list[FetchResult]]:
        inner = await fetch_all([server.url("/poster.jpg")], config=config)
        nested = fetch_many([server.url("/poster.jpg")], config=config)  # falls back to a helper thread
        return inner, nested

    inner, nested = asyncio.run(main())
    assert inner[0].ok and nested[0].ok


def test_a_failing_callback_cancels_the_rest(server: Any, config: CrawlConfig) -> None:
    def explode(result: FetchResult) -> None:
        raise ValueError("callback failed")

    with pytest.raises(ValueError, match="callback failed"):
        fetch_many([server.url(f"/inflight?delay=0.05&n={i}") for i in range(8)], config=config, on_result=explode)


def test_fetch_chunks_consumes_each_chunk_in_order_before_the_next(server: Any, config: CrawlConfig) -> None:
    chunks = [[server.url("/poster.png"), server.url("/missing?case=c1")], [server.url("/poster.jpg")]]
    consumed: list[tuple[int, list[str], list[bool]]] = []

    def consume(index: int, results: list[FetchResult]) -> None:
        consumed.append((index, [r.url for r in results], [r.ok for r in results]))

    fetch_chunks(chunks, consume=consume, config=config)
    assert consumed == [(0, chunks[0], [True, False]), (1, chunks[1], [True])]


def test_a_failing_consumer_stops_before_the_next_chunk(server: Any, config: CrawlConfig) -> None:
    calls: list[int] = []

    def consume(index: int, results: list[FetchResult]) -> None:
        calls.append(index)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fetch_chunks([[server.url("/poster.png")], [server.url("/poster.jpg")]], consume=consume, config=config)
    assert calls == [0]
