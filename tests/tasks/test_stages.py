"""The DAG's bookkeeping: quarantine counted per stage and reason, crawl failures worth another night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

import features
from features import CommitInfo
from tasks.crawl.stage import CrawlSummary
from tasks.stages import quarantined_since, stage_spec
from tasks.summary import StageSummary


def test_quarantine_is_counted_by_stage_label_reason_and_time(tmp_path: Path) -> None:
    lake = features.resolve_lake(tmp_path / "lake")
    now = datetime.now(UTC)
    rows = pl.DataFrame(
        {
            "source": ["a", "b", "c", "d"],
            "record_key": ["1", "2", "3", "4"],
            "stage": ["crawl", "embed:image", "crawl", "crawler-of-other-things"],
            "reason": ["HTTP 404", "truncated image", "HTTP 404", "HTTP 404"],
            "excerpt": [None] * 4,
            "flow_run_id": [None] * 4,
            "quarantined_at": [now, now, now - timedelta(hours=1), now],
        }
    )
    features.upsert("quarantine", rows, commit=CommitInfo(stage="test"), lake=lake)
    since = now - timedelta(seconds=1)
    assert quarantined_since(stage_spec("crawl"), since, lake=lake) == {"HTTP 404": 1}  # not the older row
    assert quarantined_since(stage_spec("embed"), since, lake=lake) == {"truncated image": 1}  # "embed:<modality>"
    assert quarantined_since(stage_spec("graphs"), since, lake=lake) == {}


def test_only_transient_crawl_failures_bring_the_crawl_back_next_night() -> None:
    assert CrawlSummary(quarantine_reasons={"timeout after 4 attempts": 2}).retry_next_run()
    assert CrawlSummary(quarantine_reasons={"HTTP 503": 1, "HTTP 404": 3}).retry_next_run()
    assert not CrawlSummary(quarantine_reasons={"HTTP 404": 3, "not an image": 1}).retry_next_run()
    assert not StageSummary().retry_next_run()  # only a summary that says so brings its stage back
