"""Prefect face of the crawl stage: progress while fetching, counts and failure reasons as artifacts."""

from __future__ import annotations

from prefect.artifacts import create_table_artifact

from tasks.crawl.config import CrawlSettings
from tasks.crawl.stage import CrawlSummary, crawl
from tasks.settings import StageContext
from tasks.task import prefect_progress, publish


def run(settings: CrawlSettings, context: StageContext) -> CrawlSummary:
    """Crawl the posters and plots not stored yet (or re-check them with ``refresh_posters``)."""
    summary = crawl(
        lake=context.lake,
        config=settings.crawl_config(),
        refresh=settings.refresh_posters,
        run_id=context.run_id,
        progress=prefect_progress("crawl-progress", "posters and plots fetched"),
    )
    reasons = [{"reason": r, "count": c} for r, c in sorted(summary.quarantine_reasons.items())]
    create_table_artifact(
        reasons or [{"reason": "(none)", "count": 0}], key="crawl-failures", description="crawl failures by reason"
    )
    publish(summary, key="crawl-summary", description="crawl counts")
    return summary
