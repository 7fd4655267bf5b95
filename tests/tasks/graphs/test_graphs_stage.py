"""The graph stage on a real lake: builds, skips when unchanged, rebuilds on a parameter or input change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import features
from features import CommitInfo
from tasks.graphs.stage import GraphsConfig, build_graphs
from tests.tasks.graphs.test_graphs_counts import TURNS


def _turns(lake: Path, frame: pl.DataFrame = TURNS) -> None:
    rows = frame.with_columns(
        role=pl.lit("seeker"),
        text=pl.lit("..."),
        ingested_at=pl.lit(datetime(2026, 11, 1, tzinfo=UTC)),
        turn_idx=pl.col("turn_idx").cast(pl.Int32),
    )
    features.upsert("turns", rows, commit=CommitInfo(stage="ingest-dialogues"), lake=lake)


def test_builds_skips_and_rebuilds(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _turns(lake)
    first = build_graphs(lake=lake, config=GraphsConfig(k=2))
    assert set(first.built) == {"co_mention", "transition"}
    assert "no item_embeddings table" in first.skipped["image_knn"]
    edges = features.read("item_graph_edges", lake=lake).collect()
    transition = edges.filter(pl.col("graph") == "transition").sort("src", "rank")
    assert transition.filter(pl.col("src") == "c").select("dst", "rank").rows() == [("a", 1), ("b", 2), ("d", 3)]
    history = features.history("item_graph_edges", lake=lake)
    assert history["stage"].to_list()[0] == "graphs"

    vectors = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "modality": "text",
            "model_id": "enc-1",
            "source_hash": "h",
            "dim": 2,
            "vector": [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]],
            "computed_at": datetime(2026, 11, 1, tzinfo=UTC),
        },
        schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
    )
    features.upsert("item_embeddings", vectors, commit=CommitInfo(stage="embed"), lake=lake)
    second = build_graphs(lake=lake, config=GraphsConfig(k=2))
    assert set(second.built) == {"text_knn"} and "unchanged" in second.skipped["co_mention"]
    assert second.built["text_knn"]["edges"] == 8 and second.built["text_knn"]["params"]["model_id"] == "enc-1"

    version = features.table_version("item_graph_edges", lake=lake)
    third = build_graphs(lake=lake, config=GraphsConfig(k=2))
    assert third.built == {} and features.table_version("item_graph_edges", lake=lake) == version  # nothing rebuilt

    fourth = build_graphs(lake=lake, config=GraphsConfig(k=3, graphs=("text_knn",)))
    assert fourth.built["text_knn"]["edges"] == 12  # k changed: rebuilt, partition replaced
    text_knn = features.read("item_graph_edges", lake=lake).filter(pl.col("graph") == "text_knn").collect()
    assert text_knn.height == 12 and text_knn.group_by("src").len()["len"].to_list() == [3, 3, 3, 3]
    others = features.read("item_graph_edges", lake=lake).filter(pl.col("graph") != "text_knn").collect()
    assert others.height == edges.height  # the other partitions untouched

    _turns(lake, TURNS.filter(pl.col("dialogue_id") == "d1").with_columns(dialogue_id=pl.lit("d3")))
    fifth = build_graphs(lake=lake, config=GraphsConfig(k=3))
    assert set(fifth.built) == {"co_mention", "transition"}  # new dialogues: the turn graphs only


def test_config_rejects_unknown_graphs_backends_and_k() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown kNN backend 'annoy'"):
        GraphsConfig(backend="annoy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown graphs"):
        GraphsConfig(graphs=("text_knn", "nope"))
    with pytest.raises(ValueError, match="k must be at least 1"):
        GraphsConfig(k=0)
