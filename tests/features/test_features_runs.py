"""``pipeline_runs`` and the skip rule: an earlier run is reusable only while its watched tables are unchanged."""

from __future__ import annotations

import features
from features import CommitInfo
from features.runs import StageRun, record_run, reusable_run
from tests.features.conftest import ItemsFactory


def _record(lake: str, fingerprint: str = "fp-1") -> None:
    record_run(
        StageRun(
            stage="ingest",
            fingerprint=fingerprint,
            status="ok",
            output_versions=features.table_versions(["items"], lake=lake),
        ),
        lake=lake,
    )


def test_reusable_until_a_watched_table_changes(lake: str, make_items: ItemsFactory) -> None:
    features.upsert("items", make_items(["a"]), commit=CommitInfo(stage="ingest"), lake=lake)
    _record(lake)
    assert reusable_run("ingest", "fp-1", watched=["items"], lake=lake) is not None
    assert reusable_run("ingest", "fp-other", watched=["items"], lake=lake) is None

    features.upsert("items", make_items(["b"]), commit=CommitInfo(stage="ingest"), lake=lake)
    assert reusable_run("ingest", "fp-1", watched=["items"], lake=lake) is None


def test_commits_of_ignored_stages_keep_a_run_reusable(lake: str, make_items: ItemsFactory) -> None:
    features.upsert("items", make_items(["a"]), commit=CommitInfo(stage="ingest"), lake=lake)
    _record(lake)
    features.upsert("items", make_items(["a"], title="crawled"), commit=CommitInfo(stage="crawl"), lake=lake)

    assert reusable_run("ingest", "fp-1", watched=["items"], ignore_stages=["crawl"], lake=lake) is not None
    assert reusable_run("ingest", "fp-1", watched=["items"], lake=lake) is None
    # one commit of a stage that is not ignored, after the ignored one, makes the run stale again
    features.upsert("items", make_items(["c"]), commit=CommitInfo(stage="ingest"), lake=lake)
    assert reusable_run("ingest", "fp-1", watched=["items"], ignore_stages=["crawl"], lake=lake) is None
