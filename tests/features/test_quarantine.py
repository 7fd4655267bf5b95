"""The quarantine writer: one row per rejected record, keyed on (source, record_key), idempotent on re-runs."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

import features
from features import CommitInfo, QuarantineRecord
from features.quarantine import EXCERPT_CHARS

AT = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def _rows(lake: str) -> pl.DataFrame:
    return features.read("quarantine", lake=lake).sort("source", "record_key").collect()


def test_rows_carry_the_commit_stage_run_id_and_time(lake: str, commit: CommitInfo) -> None:
    records = [
        QuarantineRecord("crawl:poster", "tt1", "http 404: not found", "https://example.org/1.jpg"),
        QuarantineRecord("crawl:plot", "tt2", "no text", None),
    ]
    result = features.quarantine(records, commit=commit, lake=lake, at=AT)
    assert result is not None and result.committed and result.inserted == 2
    rows = _rows(lake)
    assert rows.select("source", "record_key", "stage", "reason", "excerpt", "flow_run_id").rows() == [
        ("crawl:plot", "tt2", "test_stage", "no text", None, "run-1"),
        ("crawl:poster", "tt1", "test_stage", "http 404: not found", "https://example.org/1.jpg", "run-1"),
    ]
    assert rows["quarantined_at"].to_list() == [AT, AT]
    assert features.history("quarantine", lake=lake)["stage"].to_list() == ["test_stage"]


def test_excerpts_are_cut_and_empty_ones_kept(lake: str, commit: CommitInfo) -> None:
    records = [QuarantineRecord("s", "long", "r", "x" * 1000), QuarantineRecord("s", "blank", "r", "")]
    features.quarantine(records, commit=commit, lake=lake)
    excerpts = dict(_rows(lake).select("record_key", "excerpt").iter_rows())
    assert excerpts == {"long": "x" * EXCERPT_CHARS, "blank": ""}


def test_nothing_to_quarantine_writes_nothing(lake: str, commit: CommitInfo) -> None:
    assert features.quarantine([], commit=commit, lake=lake) is None
    assert features.table_version("quarantine", lake=lake) is None


def test_a_rerun_commits_nothing_and_a_new_reason_updates_in_place(lake: str, commit: CommitInfo) -> None:
    record = QuarantineRecord("catalog:demo", "items.csv#row3", "missing item_id", "{}")
    features.quarantine([record], commit=commit, lake=lake, at=AT)
    version = features.table_version("quarantine", lake=lake)
    later = CommitInfo(stage="test_stage", flow_run_id="run-2")
    again = features.quarantine([record], commit=later, lake=lake)
    assert again is not None and not again.committed and again.unchanged == 1
    assert features.table_version("quarantine", lake=lake) == version  # a re-run writes no new version
    changed = QuarantineRecord("catalog:demo", "items.csv#row3", "unparseable year 'x'", "{}")
    updated = features.quarantine([changed], commit=later, lake=lake)
    assert updated is not None and updated.committed and updated.updated == 1
    assert _rows(lake).select("reason", "flow_run_id").rows() == [("unparseable year 'x'", "run-2")]


def test_a_key_repeated_in_one_call_keeps_the_last_record(lake: str, commit: CommitInfo) -> None:
    records = [QuarantineRecord("d", "k", "first", "a"), QuarantineRecord("d", "k", "second", "b")]
    result = features.quarantine(records, commit=commit, lake=lake)
    assert result is not None and result.inserted == 1
    assert _rows(lake).select("reason", "excerpt").rows() == [("second", "b")]
