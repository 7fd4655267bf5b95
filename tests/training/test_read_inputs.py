"""A registered model's exact inputs: every table at the version its registry row names."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

import features
import training
from features import CommitInfo
from training.inputs import split_model_ref
from training.registry import promote, register


def test_inputs_are_the_tables_at_the_registered_versions(fixture_lake: str) -> None:
    versions = features.table_versions(["items", "turns"], lake=fixture_lake)
    metrics = {"valid": {"standard": {"recall@10": 0.1}}}
    register("m", 1, metrics=metrics, config={}, input_versions=versions, artifact_uri="/a/1", lake=fixture_lake)
    items_then = features.read("items", lake=fixture_lake).collect()
    new = {"item_id": ["late"], "source": ["x"], "title": ["Late"], "content_hash": ["h"]}
    frame = pl.DataFrame({**new, "ingested_at": [datetime(2026, 12, 1, tzinfo=UTC)]})
    features.upsert("items", frame, commit=CommitInfo(stage="fixture"), lake=fixture_lake)

    inputs = training.read_inputs("m@1", lake=fixture_lake)
    assert set(inputs) == {"items", "turns"}
    assert inputs["items"].collect().sort("item_id").equals(items_then.sort("item_id"))
    assert features.read("items", lake=fixture_lake).collect().height == items_then.height + 1
    assert training.input_versions("m@candidate", lake=fixture_lake) == versions
    with pytest.raises(LookupError):
        training.read_inputs("m", lake=fixture_lake)  # no production yet
    promote("m", 1, force=True, lake=fixture_lake)
    assert set(training.read_inputs("m", lake=fixture_lake)) == {"items", "turns"}


def test_model_refs() -> None:
    assert split_model_ref("m@candidate") == ("m", "candidate")
    assert split_model_ref("m", 3) == ("m", "3")
    assert split_model_ref("m") == ("m", "production")
    with pytest.raises(ValueError, match="names version"):
        split_model_ref("m@2", 3)


def test_one_summary_per_point_keeps_one_model_and_the_latest_row() -> None:
    from datetime import UTC, datetime

    import polars as pl

    from training.data import one_summary_per_point

    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    rows = pl.DataFrame(
        {
            "dialogue_id": ["d1", "d1", "d1", "d2", "d1"],
            "upto_turn": [1, 1, 3, 1, 1],
            "model_id": ["a", "a", "a", "a", "b"],
            "prompt_hash": ["h2", "h1", "h3", "h4", "h0"],  # differs per row: it covers the history summarised
            "summary": ["old", "new", "later", "other", "model b"],
            "generated_at": [t0, t1, t0, t0, t1],
        }
    )
    kept = one_summary_per_point(rows)
    assert kept.select("dialogue_id", "upto_turn", "summary").rows() == [
        ("d1", 1, "new"),
        ("d1", 3, "later"),
        ("d2", 1, "other"),
    ]
