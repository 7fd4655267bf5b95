"""Fetching many URLs at once, bounded and safe: every URL ends as a ``FetchResult``, never an exception.

A ``Fetcher`` owns one ``httpx.AsyncClient`` (no environment proxies, redirects off) and two layers of
semaphores: ``per_host_concurrency`` per host, then ``max_concurrency`` overall (taken in that order, so
requests queued for a busy host never hold global slots). For each URL it

1. checks the URL against the safety policy (scheme, ``file_root``, and for HTTP the host's addresses),
2. sends the request: connect/read timeouts from httpx, plus a deadline on the whole attempt; timeouts,
   connection errors, HTTP 429 and 5xx are retried with full-jitter backoff or the server's
   ``Retry-After`` (capped); other statuses are final,
3. follows redirects itself, re-checking every hop (scheme and address) and refusing loops,
4. streams the body under the size cap (``tasks.crawl.body``), and
5. reports ``304 Not Modified`` for conditional requests (``If-None-Match`` / ``If-Modified-Since``).

Local files (``file://`` URIs or bare paths under ``file_root``) are read from disk with the same cap.
``fetch_all`` runs a list of URLs through one fetcher with a bounded number of tasks alive;
``fetch_many`` is its synchronous face; ``fetch_chunks`` fetches chunk after chunk through one client and
hands each chunk's results to a consumer (what the crawl stage uses).
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, TypeVar

import httpx

from features.redact import redact_urls
from tasks.backoff import retry_delay
from tasks.crawl.body import BodyError, read_capped, read_file_capped
from tasks.crawl.config import CrawlConfig
from tasks.crawl.safety import Refusal, Target, check_host, check_url

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchResult:
    """The outcome of fetching one URL.

    Attributes:
        url: the URL as requested.
        final_url: where the body came from (after redirects; a ``file://`` URI for local files).
        ok: the body (or a 304) was received within every limit.
        not_modified: the server answered 304 to a conditional request (``body`` is None).
        body: the bytes (None when not ok or not modified).
        http_status: the last HTTP status seen (None for local files and failures before a response).
        content_type: the ``Content-Type`` header (guessed from the name for local files).
        etag: the ``ETag`` header, for the next conditional request.
        last_modified: the ``Last-Modified`` header, for the next conditional request.
        reason: why it failed, e.g. ``"HTTP 404"``, ``"timeout after 4 attempts"``,
            ``"too large: > 10485760 bytes"``, ``"blocked address: 10.0.0.1 is private"``.
        attempts: requests sent, over all retries and redirect hops.
        elapsed_s: wall time, including waits for a concurrency slot and backoff.
    """

    url: str
    final_url: str | None
    ok: bool
    not_modified: bool = False
    body: bytes | None = None
    http_status: int | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    reason: str | None = None
    attempts: int = 0
    elapsed_s: float = 0.0


class FetchRequest(NamedTuple):
    """One URL to fetch, with the validators of a previous fetch and an optional size cap."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    max_bytes: int | None = None


RequestLike = str | FetchRequest | tuple[str, str | None, str | None]
ResultCallback = Callable[[FetchResult], None]
ChunkConsumer = Callable[[int, list[FetchResult]], None]
T = TypeVar("T")


class _Failed(Exception):
    """A final (not retried) failure; ``fetch`` turns it into a ``FetchResult``."""

    def __init__(self, reason: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.url = reason, status, url


@dataclass(frozen=True)
class _Reply:
    url: str
    status: int
    headers: httpx.Headers
    body: bytes | None


@dataclass
class _Counter:
    attempts: int = 0
    seen: set[str] = field(default_factory=set)  # URLs requested so far, for redirect loop detection


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _final_result(url: str, reply: _Reply, *, conditional: bool) -> FetchResult:
    """The result of the last hop: a body, a 304, or a final HTTP status."""
    if reply.status == 304 and not conditional:
        raise _Failed("HTTP 304 without a conditional request", status=304, url=reply.url)
    if reply.status != 304 and not 200 <= reply.status < 300:
        raise _Failed(f"HTTP {reply.status}", status=reply.status, url=reply.url)
    return FetchResult(
        url=url,
        final_url=reply.url,
        ok=True,
        not_modified=reply.status == 304,
        body=reply.body if reply.status != 304 else None,
        http_status=reply.status,
        content_type=reply.headers.get("content-type"),
        etag=reply.headers.get("etag"),
        last_modified=reply.headers.get("last-modified"),
    )


class Fetcher:
    """Fetches URLs under the limits and safety policy of a ``CrawlConfig``.

    Example:
        >>> async def posters(urls):
        ...     async with Fetcher(CrawlConfig()) as fetcher:
        ...         return [await fetcher.fetch(url) for url in urls]
    """

    def __init__(self, config: CrawlConfig | None = None) -> None:
        self.config = config or CrawlConfig()
        self._client: httpx.AsyncClient | None = None
        self._global = asyncio.Semaphore(self.config.max_concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._host_checks: dict[tuple[str, int], Refusal | None] = {}

    async def __aenter__(self) -> Fetcher:
        cfg = self.config
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxies or CA bundles from the environment
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout_s,
                read=cfg.read_timeout_s,
                write=cfg.read_timeout_s,
                pool=cfg.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=cfg.max_concurrency, max_keepalive_connections=cfg.max_concurrency),
            headers={"User-Agent": cfg.user_agent, "Accept-Encoding": "identity"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _allow_host(self, target: Target) -> Refusal | None:
        """The address check of a host, remembered for the fetcher's life (DNS failures are not)."""
        assert target.host is not None and target.port is not None
        key = (target.host, target.port)
        if key in self._host_checks:
            return self._host_checks[key]
        refusal = await check_host(target.host, target.port, self.config)
        if refusal is None or refusal.reason.startswith("blocked address"):
            self._host_checks[key] = refusal
        return refusal

    async def _attempt(self, target: Target, headers: dict[str, str], max_bytes: int) -> _Reply:
        """One request: wait for a host slot, then a global slot, then send under the attempt deadline."""
        assert self._client is not None and target.host is not None
        host_slots = self._per_host.setdefault(target.host, asyncio.Semaphore(self.config.per_host_concurrency))
        async with (
            host_slots,
            self._global,
            asyncio.timeout(self.config.total_timeout_s),  # starts once both slots are held
            self._client.stream("GET", target.url, headers=headers) as response,
        ):
            body = None
            if 200 <= response.status_code < 300:
                try:
                    body = await read_capped(response, max_bytes=max_bytes)
                except BodyError as exc:
                    raise _Failed(exc.reason, status=response.status_code, url=target.url) from exc
            return _Reply(target.url, response.status_code, response.headers, body)

    async def _with_retries(self, target: Target, headers: dict[str, str], max_bytes: int, counter: _Counter) -> _Reply:
        """A reply that is not worth retrying, or ``_Failed`` once the retries are spent."""
        tries = self.config.retry.retries + 1
        last, status = "", None
        for attempt in range(tries):
            counter.attempts += 1
            retry_after = None
            try:
                reply = await self._attempt(target, headers, max_bytes)
            except (httpx.TimeoutException, TimeoutError):
                last = "timeout"
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                last = f"connection error ({type(exc).__name__}: {exc})"
            else:
                if not _retryable(reply.status):
                    return reply
                last, status, retry_after = f"HTTP {reply.status}", reply.status, reply.headers.get("retry-after")
            if attempt + 1 < tries:
                await asyncio.sleep(retry_delay(attempt, retry_after=retry_after, policy=self.config.retry))
        raise _Failed(f"{last} after {_plural(tries, 'attempt')}", status=status, url=target.url)

    def _next_hop(self, reply: _Reply, counter: _Counter) -> Target:
        """The checked target of a redirect, or ``_Failed`` (no Location, loop, too many, refused)."""
        location = reply.headers.get("location", "").strip()
        if not location:
            raise _Failed(f"HTTP {reply.status} redirect without Location", status=reply.status, url=reply.url)
        try:
            next_url = str(httpx.URL(reply.url).join(location))
        except (httpx.InvalidURL, ValueError) as exc:
            raise _Failed(f"invalid redirect Location: {exc}", status=reply.status, url=reply.url) from exc
        if next_url in counter.seen:
            raise _Failed(f"redirect loop: {next_url}", status=reply.status, url=reply.url)
        if len(counter.seen) > self.config.max_redirects:
            raise _Failed(f"too many redirects (> {self.config.max_redirects})", status=reply.status, url=reply.url)
        checked = check_url(next_url, self.config, redirect=True)
        if isinstance(checked, Refusal):
            raise _Failed(f"{checked.reason} after redirect to {next_url}", status=reply.status, url=reply.url)
        return checked

    async def _fetch_http(
        self, url: str, target: Target, headers: dict[str, str], max_bytes: int, counter: _Counter
    ) -> FetchResult:
        """Request, following redirects hop by hop; every hop's address is checked before it is contacted."""
        while True:
            counter.seen.add(target.url)
            refusal = await self._allow_host(target)
            if refusal is not None:
                after = f" after redirect to {target.url}" if len(counter.seen) > 1 else ""
                raise _Failed(refusal.reason + after, url=target.url)
            reply = await self._with_retries(target, headers, max_bytes, counter)
            if reply.status not in _REDIRECT_STATUSES:
                return _final_result(url, reply, conditional=bool(headers))
            target = self._next_hop(reply, counter)

    async def _fetch_file(self, url: str, path: Path, max_bytes: int) -> FetchResult:
        async with self._global:  # bounds the reader threads too
            try:
                body = await asyncio.to_thread(read_file_capped, path, max_bytes=max_bytes)
            except BodyError as exc:
                raise _Failed(exc.reason, url=path.as_uri()) from exc
        content_type = mimetypes.guess_type(path.name)[0]
        return FetchResult(url=url, final_url=path.as_uri(), ok=True, body=body, content_type=content_type)

    async def _fetch(self, url: str, headers: dict[str, str], max_bytes: int, counter: _Counter) -> FetchResult:
        target = check_url(url, self.config)
        if isinstance(target, Refusal):
            raise _Failed(target.reason)
        if target.path is not None:
            counter.attempts += 1
            return await self._fetch_file(url, target.path, max_bytes)
        return await self._fetch_http(url, target, headers, max_bytes, counter)

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """Fetch one URL; failures come back as results with ``ok=False`` and a reason, never as exceptions.

        Args:
            url: an ``http(s)://`` URL, a ``file://`` URI or a local path (see ``check_url``).
            etag: a previous ``ETag``: sent as ``If-None-Match``.
            last_modified: a previous ``Last-Modified``: sent as ``If-Modified-Since``.
            max_bytes: size cap of this body (default ``config.max_bytes``; plots use ``max_text_bytes``).

        Returns:
            The ``FetchResult``.
        """
        if self._client is None:
            raise RuntimeError("use the fetcher inside 'async with Fetcher(config) as fetcher'")
        started, counter = time.monotonic(), _Counter()
        headers = _conditional_headers(etag, last_modified)
        try:
            result = await self._fetch(url, headers, max_bytes or self.config.max_bytes, counter)
        except _Failed as exc:
            result = FetchResult(url=url, final_url=exc.url, ok=False, http_status=exc.status, reason=exc.reason)
        except Exception as exc:  # a bad URL or response must never take the run down
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            result = FetchResult(url=url, final_url=None, ok=False, reason=reason)
        return replace(
            result,
            final_url=None if result.final_url is None else redact_urls(result.final_url),
            reason=None if result.reason is None else redact_urls(result.reason),  # e.g. a redirect's Location
            attempts=counter.attempts,
            elapsed_s=round(time.monotonic() - started, 6),
        )


def _as_request(item: RequestLike) -> FetchRequest:
    return FetchRequest(item) if isinstance(item, str) else FetchRequest(*item)


async def _run_windowed(
    fetcher: Fetcher, requests: Sequence[FetchRequest], *, window: int, sink: Callable[[int, FetchResult], None]
) -> None:
    """Fetch every request with at most ``window`` tasks alive; hand each result to ``sink`` as it lands."""

    async def one(index: int, request: FetchRequest) -> tuple[int, FetchResult]:
        result = await fetcher.fetch(
            request.url, etag=request.etag, last_modified=request.last_modified, max_bytes=request.max_bytes
        )
        return index, result

    queue = iter(enumerate(requests))
    pending: set[asyncio.Task[tuple[int, FetchResult]]] = set()
    try:
        while True:
            for index, request in itertools.islice(queue, window - len(pending)):
                pending.add(asyncio.create_task(one(index, request)))
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                sink(*task.result())
    finally:  # a failing sink (or cancellation) must not leave requests running
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def fetch_all(
    requests: Iterable[RequestLike],
    *,
    config: CrawlConfig | None = None,
    on_result: ResultCallback | None = None,
    keep_bodies: bool = True,
) -> list[FetchResult]:
    """Fetch many URLs concurrently through one ``Fetcher``.

    Args:
        requests: URLs, ``(url, etag, last_modified)`` tuples or ``FetchRequest``s.
        config: limits and policy (default ``CrawlConfig()``).
        on_result: called with each result as soon as it is complete (completion order).
        keep_bodies: False drops the bodies from the returned list (``on_result`` still sees them),
            so a long list does not hold every poster in memory.

    Returns:
        One ``FetchResult`` per request, in request order.
    """
    cfg = config or CrawlConfig()
    items = [_as_request(item) for item in requests]
    results: list[FetchResult | None] = [None] * len(items)

    def sink(index: int, result: FetchResult) -> None:
        if on_result is not None:
            on_result(result)
        results[index] = result if keep_bodies else replace(result, body=None)

    async with Fetcher(cfg) as fetcher:
        await _run_windowed(fetcher, items, window=2 * cfg.max_concurrency, sink=sink)
    return [result for result in results if result is not None]


def _run_sync(make: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run a coroutine to completion from synchronous code (in a helper thread if a loop already runs here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def fetch_many(
    requests: Iterable[RequestLike],
    *,
    config: CrawlConfig | None = None,
    on_result: ResultCallback | None = None,
    keep_bodies: bool = True,
) -> list[FetchResult]:
    """Synchronous ``fetch_all`` for synchronous callers (runs its own event loop).

    Called from a thread that already runs an event loop, it runs in a helper thread instead.

    Args:
        requests: URLs, ``(url, etag, last_modified)`` tuples or ``FetchRequest``s.
        config: limits and policy (default ``CrawlConfig()``).
        on_result: called with each result as soon as it is complete.
        keep_bodies: False drops the bodies from the returned list.

    Returns:
        One ``FetchResult`` per request, in request order.

    Example:
        A new poster, and one fetched before that is re-checked with its validators::

            results = fetch_many(
                ["https://img.example/1.jpg", ("https://img.example/2.jpg", '"etag-2"', None)],
                config=CrawlConfig(),
            )
    """
    items = list(requests)
    return _run_sync(lambda: fetch_all(items, config=config, on_result=on_result, keep_bodies=keep_bodies))


async def _chunked(chunks: Iterable[Sequence[RequestLike]], config: CrawlConfig, consume: ChunkConsumer) -> None:
    async with Fetcher(config) as fetcher:
        for index, chunk in enumerate(chunks):
            requests = [_as_request(item) for item in chunk]
            results: list[FetchResult | None] = [None] * len(requests)

            def sink(i: int, result: FetchResult, results: list[FetchResult | None] = results) -> None:
                results[i] = result

            await _run_windowed(fetcher, requests, window=2 * config.max_concurrency, sink=sink)
            consume(index, [result for result in results if result is not None])


def fetch_chunks(
    chunks: Iterable[Sequence[RequestLike]], *, consume: ChunkConsumer, config: CrawlConfig | None = None
) -> None:
    """Fetch chunk after chunk through one ``Fetcher`` (one connection pool, one TLS context for the whole
    crawl), handing each chunk's results to ``consume(chunk_index, results)`` before the next chunk starts.

    ``consume`` runs on the fetching thread, in chunk order, so it can validate, store and commit a chunk
    before more is fetched: a crawl killed half-way keeps every consumed chunk. (Consuming in a worker
    thread while the next chunk is fetched was measured slower here: the consumer's Python work and the
    event loop contend for the GIL.) An exception in ``consume`` stops the crawl and is raised here.

    Args:
        chunks: request chunks (URLs, ``(url, etag, last_modified)`` tuples or ``FetchRequest``s).
        consume: called with each chunk's index and its results, in request order.
        config: limits and policy (default ``CrawlConfig()``).
    """
    cfg = config or CrawlConfig()
    _run_sync(lambda: _chunked(chunks, cfg, consume))
