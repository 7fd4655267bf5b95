"""Crawl stage: fetch the posters (and plots) that ``items`` points to and that are not stored yet.

Reader -> fetcher -> writer, in chunks: each chunk's outcome is validated (every poster fully decoded),
its posters stored (flushed to disk together, ``BlobStore.put_many``) and its rows committed before the
next chunk is fetched (``fetch_chunks``), so a crawl killed half-way keeps every chunk committed before it
and a re-run fetches only what is missing. A URL fetched
successfully is never fetched again (``refresh=True`` asks the server with ETag / Last-Modified
conditional requests instead). Every failure becomes a ``quarantine`` row with its precise reason.

Tables: ``poster_fetches`` (one row per URL: outcome and validators), ``poster_blobs`` (metadata of the
stored bytes; the bytes live in the content-addressed blob store beside the lake), ``items.poster_sha256``
and ``items.plot_text`` (set here), ``quarantine``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import polars as pl

import features
from features import CommitInfo, Lake, QuarantineRecord
from features.blobs import poster_store
from features.redact import redact_urls
from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import FetchRequest, FetchResult, fetch_chunks
from tasks.crawl.images import validate_image
from tasks.crawl.text import extract_text
from tasks.progress import Progress
from tasks.summary import StageSummary, reason_notes

STAGE = "crawl"


@dataclass
class CrawlSummary(StageSummary):
    """Counts of one crawl run."""

    title = "crawl"

    urls: int = 0  # distinct poster and plot URLs in the catalog
    already_stored: int = 0  # fetched successfully before: not requested
    requested: int = 0
    stored: int = 0  # fetched, validated, stored
    not_modified: int = 0  # refresh: 304
    failed: int = 0
    items_updated: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def rows(self) -> list[dict[str, object]]:
        """One row: URLs, already stored, requested, stored, not modified, failed, seconds."""
        keys = ("urls", "already_stored", "requested", "stored", "not_modified", "failed", "elapsed_s")
        return [{k: getattr(self, k) for k in keys}]

    def notes(self) -> list[str]:
        """Failure reasons."""
        return reason_notes("crawl", self.quarantine_reasons)

    def retry_next_run(self) -> bool:
        """Failures on timeouts, connection errors, HTTP 5xx or 429 are tried again on the next run."""
        return any(str(r).startswith(TRANSIENT_REASONS) for r in self.quarantine_reasons)


TRANSIENT_REASONS = ("timeout", "HTTP 5", "HTTP 429", "connection", "connect")


@dataclass(frozen=True)
class _Job:
    url: str
    kind: str  # poster | plot
    etag: str | None = None
    last_modified: str | None = None
    previous_sha: str | None = None


def _plan(items: pl.DataFrame, fetches: pl.DataFrame, *, refresh: bool) -> tuple[list[_Job], int]:
    """Jobs for URLs never fetched successfully (and, with ``refresh``, conditional ones for the rest)."""
    ok = {r["url"]: r for r in fetches.filter(pl.col("status") == "ok").iter_rows(named=True)}
    wanted = [(u, "poster") for u in items["poster_url"].drop_nulls().unique(maintain_order=True)]
    wanted += [
        (u, "plot") for u in items.filter(pl.col("text").is_null())["plot_url"].drop_nulls().unique(maintain_order=True)
    ]
    jobs, stored = [], 0
    for url, kind in dict.fromkeys(wanted):
        previous = ok.get(url)
        if previous is None:
            jobs.append(_Job(url, kind))
        elif refresh:
            jobs.append(_Job(url, kind, previous["etag"], previous["last_modified"], previous["sha256"]))
        else:
            stored += 1
    return jobs, stored


def _request(job: _Job, config: CrawlConfig) -> FetchRequest:
    """Posters are capped at ``max_bytes``, plot pages at ``max_text_bytes``."""
    cap = config.max_bytes if job.kind == "poster" else config.max_text_bytes
    return FetchRequest(job.url, job.etag, job.last_modified, cap)


def _chunks(jobs: Sequence[_Job], size: int) -> Iterator[Sequence[_Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


class _Writer:
    """Turns one chunk of fetch results into blob files and table rows, and commits them."""

    def __init__(self, lake: Lake, config: CrawlConfig, commit: CommitInfo, summary: CrawlSummary) -> None:
        self.lake, self.config, self.commit, self.summary = lake, config, commit, summary
        self.blobs = poster_store(lake)
        self.now = datetime.now(UTC)

    def _fetch_row(self, job: _Job, result: FetchResult, sha: str | None, reason: str | None) -> dict[str, object]:
        return {
            "url": redact_urls(job.url),  # a refused URL's credentials are never stored
            "kind": job.kind,
            "status": "failed" if reason else "ok",
            "sha256": sha,
            "http_status": result.http_status,
            "reason": reason,
            "etag": result.etag or (job.etag if result.not_modified else None),
            "last_modified": result.last_modified or (job.last_modified if result.not_modified else None),
            "attempts": result.attempts,
            "fetched_at": self.now,
        }

    def _poster(
        self, job: _Job, result: FetchResult, blob_rows: list[dict[str, object]], bodies: list[bytes]
    ) -> tuple[str | None, str | None]:
        """(sha, failure reason) of one poster result; its bytes join ``bodies`` (to store) when they are a
        valid image."""
        if result.not_modified:
            return job.previous_sha, None
        info = validate_image(result.body or b"", config=self.config)
        if isinstance(info, str):
            return None, info
        bodies.append(result.body or b"")
        blob_rows.append(
            {
                "sha256": info.sha256,
                "url": job.url,
                "bytes": info.bytes,
                "width": info.width,
                "height": info.height,
                "format": info.format,
                "http_status": result.http_status,
                "etag": result.etag,
                "last_modified": result.last_modified,
                "fetched_at": self.now,
            }
        )
        return info.sha256, None

    def _plot(self, job: _Job, result: FetchResult, texts: dict[str, str]) -> tuple[str | None, str | None]:
        if result.not_modified:
            return job.previous_sha, None
        extracted = extract_text(
            result.body or b"", content_type=result.content_type, json_field=self.config.plot_json_field
        )
        if extracted.text is None:
            return None, extracted.reason or "no text"
        texts[job.url] = extracted.text
        return hashlib.sha256(extracted.text.encode()).hexdigest(), None

    def write(self, jobs: Sequence[_Job], results: Sequence[FetchResult], items: pl.DataFrame) -> None:
        fetch_rows: list[dict[str, object]] = []
        blob_rows: list[dict[str, object]] = []
        bodies: list[bytes] = []
        texts: dict[str, str] = {}
        failures: dict[str, tuple[str, str]] = {}  # url -> (kind, reason)
        sha: str | None
        reason: str | None
        for job, result in zip(jobs, results, strict=True):
            if not result.ok:
                sha, reason = None, result.reason or "failed"
            elif job.kind == "poster":
                sha, reason = self._poster(job, result, blob_rows, bodies)
            else:
                sha, reason = self._plot(job, result, texts)
            self.summary.not_modified += int(result.ok and result.not_modified and reason is None)
            self.summary.stored += int(result.ok and not result.not_modified and reason is None)
            if reason:
                failures[job.url] = (job.kind, reason)
            fetch_rows.append(self._fetch_row(job, result, sha, reason))
        self.blobs.put_many(bodies)  # durable before any row points at them
        self._commit(blob_rows, fetch_rows, texts, failures, items)

    def _commit(
        self,
        blob_rows: list[dict[str, object]],
        fetch_rows: list[dict[str, object]],
        texts: dict[str, str],
        failures: dict[str, tuple[str, str]],
        items: pl.DataFrame,
    ) -> None:
        if blob_rows:
            unique = pl.DataFrame(blob_rows).unique("sha256", keep="first", maintain_order=True)
            self._record(features.upsert("poster_blobs", unique, commit=self.commit, lake=self.lake))
        fetches = pl.DataFrame(fetch_rows).unique("url", keep="first", maintain_order=True)  # redacted URLs may meet
        self._record(features.upsert("poster_fetches", fetches, commit=self.commit, lake=self.lake))
        if texts:
            plots = items.filter(pl.col("plot_url").is_in(list(texts)) & pl.col("text").is_null())
            update = plots.select("item_id", pl.col("plot_url").replace_strict(texts).alias("plot_text"))
            self._record(features.update_columns("items", update, commit=self.commit, lake=self.lake))
        self._quarantine(failures, items)

    def _quarantine(self, failures: dict[str, tuple[str, str]], items: pl.DataFrame) -> None:
        records = []
        for url, (kind, reason) in failures.items():
            column = "poster_url" if kind == "poster" else "plot_url"
            category = reason.split(":")[0]
            self.summary.quarantine_reasons[category] = self.summary.quarantine_reasons.get(category, 0) + 1
            self.summary.failed += 1
            for item_id in items.filter(pl.col(column) == url)["item_id"]:
                records.append(QuarantineRecord(f"crawl:{kind}", item_id, redact_urls(reason), redact_urls(url)))
        result = features.quarantine(records, commit=self.commit, lake=self.lake, at=self.now)
        if result is not None:
            self._record(result)

    def _record(self, result: features.WriteResult) -> None:
        if result.committed and result.version is not None:
            self.summary.versions[result.table] = result.version
        if result.table == "items":
            self.summary.items_updated += result.updated


def _point_items_at_blobs(lake: Lake, commit: CommitInfo, writer: _Writer) -> None:
    """Set ``items.poster_sha256`` from the successful fetches (and clear it where the URL has none)."""
    items = features.read(
        "items", columns=["item_id", "poster_url", "poster_sha256"], missing="empty", lake=lake
    ).collect()
    fetches = features.read(
        "poster_fetches", columns=["url", "kind", "status", "sha256"], missing="empty", lake=lake
    ).collect()
    ok = fetches.filter((pl.col("status") == "ok") & (pl.col("kind") == "poster")).select(
        pl.col("url").alias("poster_url"), pl.col("sha256").alias("expected")
    )
    joined = items.join(ok, on="poster_url", how="left")
    stale = joined.filter(~pl.col("poster_sha256").eq_missing(pl.col("expected")))
    if stale.height:
        update = stale.select("item_id", pl.col("expected").alias("poster_sha256"))
        writer._record(features.update_columns("items", update, commit=commit, lake=lake))
    resolved = joined.filter(pl.col("expected").is_not_null())["item_id"].to_list()
    if resolved:
        keys = ", ".join("'" + i.replace("'", "''") + "'" for i in resolved)
        deleted = features.delete(
            "quarantine", f"source = 'crawl:poster' AND record_key IN ({keys})", commit=commit, lake=lake
        )
        writer._record(deleted)


def crawl(
    *,
    lake: Lake | str | None = None,
    config: CrawlConfig | None = None,
    refresh: bool = False,
    run_id: str | None = None,
    chunk_size: int = 256,
    progress: Progress | None = None,
) -> CrawlSummary:
    """Fetch every poster (and plot) the catalog points to that is not stored yet.

    Args:
        lake: lake root.
        config: fetch limits and safety policy (default ``CrawlConfig()``).
        refresh: re-check stored URLs with conditional requests (ETag / Last-Modified).
        run_id: flow run id recorded in the commits.
        chunk_size: URLs per committed chunk (the most a killed crawl can lose).
        progress: called with (done, total) after each chunk.

    Returns:
        The ``CrawlSummary``; an unchanged catalog makes no requests and commits nothing.
    """
    resolved, cfg, started = features.resolve_lake(lake), config or CrawlConfig(), time.perf_counter()
    summary = CrawlSummary()
    commit = CommitInfo(
        stage=STAGE,
        flow_run_id=run_id,
        config_hash=features.config_hash(asdict(cfg)),
        input_versions=features.table_versions(["items", "poster_fetches"], lake=resolved),
    )
    writer = _Writer(resolved, cfg, commit, summary)
    items = features.read(
        "items", columns=["item_id", "poster_url", "plot_url", "text"], missing="empty", lake=resolved
    ).collect()
    fetches = features.read(
        "poster_fetches", columns=["url", "status", "sha256", "etag", "last_modified"], missing="empty", lake=resolved
    ).collect()
    jobs, summary.already_stored = _plan(items, fetches, refresh=refresh)
    summary.urls, summary.requested = len(jobs) + summary.already_stored, len(jobs)
    chunks = list(_chunks(jobs, chunk_size))
    done = 0

    def consume(index: int, results: list[FetchResult]) -> None:
        nonlocal done
        writer.write(chunks[index], results, items)  # one commit per chunk
        done += len(results)
        if progress:
            progress(done, len(jobs))

    fetch_chunks([[_request(job, cfg) for job in chunk] for chunk in chunks], consume=consume, config=cfg)
    _point_items_at_blobs(resolved, commit, writer)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary
