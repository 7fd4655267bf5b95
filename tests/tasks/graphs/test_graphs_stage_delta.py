"""The graph stage on a lake, night after night: deltas update graphs in place, equal to a full rebuild."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import features
from features import CommitInfo
from tasks.graphs.stage import GraphsConfig, build_graphs
from tests.tasks.graphs.test_graphs_stage import _turns

CONFIG = GraphsConfig(graphs=("text_knn",), k=5)


def _embed(lake: Path, ids: list[str], vectors: np.ndarray, when: int) -> None:
    rows = pl.DataFrame(
        {
            "item_id": ids,
            "modality": "text",
            "model_id": "enc-1",
            "source_hash": "h",
            "dim": vectors.shape[1],
            "vector": vectors.tolist(),
            "computed_at": datetime(2026, 11, when, tzinfo=UTC),
        },
        schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
    )
    features.upsert("item_embeddings", rows, commit=CommitInfo(stage="embed"), lake=lake)


def _edges(lake: Path, graph: str) -> pl.DataFrame:
    edges = features.read("item_graph_edges", lake=lake).filter(pl.col("graph") == graph).collect()
    return edges.sort("src", "rank")


def _latest_counts(lake: Path, graph: str) -> dict[str, object]:
    runs = features.read("pipeline_runs", lake=lake).filter(pl.col("stage") == f"graphs:{graph}").collect()
    return json.loads(runs.sort("started_at")["counts"][-1])


def test_a_knn_delta_updates_the_graph_to_the_full_rebuild(tmp_path: Path) -> None:
    lake, rng = tmp_path / "lake", np.random.default_rng(0)
    ids = [f"item{j:03d}" for j in range(0, 300, 2)]
    _embed(lake, ids, rng.standard_normal((150, 8)), when=1)
    assert build_graphs(lake=lake, config=CONFIG).built["text_knn"]["mode"] == "full"
    _embed(lake, [f"item{j:03d}" for j in range(1, 20, 2)], rng.standard_normal((10, 8)), when=2)  # added
    _embed(lake, ids[:3], rng.standard_normal((3, 8)), when=2)  # changed
    features.delete_keys("item_embeddings", pl.DataFrame({"item_id": ids[-4:], "modality": "text",
                         "model_id": "enc-1"}), commit=CommitInfo(stage="embed"), lake=lake)  # fmt: skip
    night = build_graphs(lake=lake, config=CONFIG).built["text_knn"]
    assert night["mode"] == "incremental" and (night["added"], night["changed"], night["removed"]) == (10, 3, 4)
    assert night["rows_rewritten"] < 159
    updated = _edges(lake, "text_knn")
    assert "incremental" in features.history("item_graph_edges", lake=lake)["metadata"][0]
    build_graphs(lake=lake, config=CONFIG, force=True)
    full = _edges(lake, "text_knn")
    assert updated.select("src", "dst", "rank").rows() == full.select("src", "dst", "rank").rows()
    assert np.allclose(updated["weight"].to_numpy(), full["weight"].to_numpy(), atol=1e-6)


def test_a_large_delta_or_new_parameters_rebuild_whole(tmp_path: Path) -> None:
    lake, rng = tmp_path / "lake", np.random.default_rng(1)
    _embed(lake, [f"i{j:03d}" for j in range(50)], rng.standard_normal((50, 4)), when=1)
    build_graphs(lake=lake, config=CONFIG)
    _embed(lake, [f"j{j:03d}" for j in range(20)], rng.standard_normal((20, 4)), when=2)  # 29 % new
    assert build_graphs(lake=lake, config=CONFIG).built["text_knn"]["mode"] == "full"
    _embed(lake, ["k000"], rng.standard_normal((1, 4)), when=3)
    assert build_graphs(lake=lake, config=GraphsConfig(graphs=("text_knn",), k=4)).built["text_knn"]["mode"] == "full"


def test_auto_switches_to_hnsw_above_the_threshold_and_stores_sampled_recall(tmp_path: Path) -> None:
    lake, rng = tmp_path / "lake", np.random.default_rng(2)
    _embed(lake, [f"i{j:04d}" for j in range(400)], rng.standard_normal((400, 16)), when=1)
    small = build_graphs(lake=lake, config=GraphsConfig(graphs=("text_knn",), exact_max_items=1000))
    assert small.built["text_knn"]["backend"] == "torch" and "recall_at_k_vs_exact" not in small.built["text_knn"]
    config = GraphsConfig(graphs=("text_knn",), exact_max_items=100, recall_sample=50)
    large = build_graphs(lake=lake, config=config).built["text_knn"]
    assert large["backend"] == "faiss-approx" and large["recall_sample"] == 50
    assert 0.8 <= float(large["recall_at_k_vs_exact"]) <= 1.0  # type: ignore[arg-type]
    assert _latest_counts(lake, "text_knn")["recall_at_k_vs_exact"] == large["recall_at_k_vs_exact"]
    meta = json.loads(features.history("item_graph_edges", lake=lake)["metadata"][0])
    assert meta["recall_at_k_vs_exact"] == str(large["recall_at_k_vs_exact"]) and meta["backend"] == "faiss-approx"
    _embed(lake, [f"n{j:03d}" for j in range(8)], rng.standard_normal((8, 16)), when=2)
    night = build_graphs(lake=lake, config=config).built["text_knn"]
    assert night["mode"] == "incremental" and 0.8 <= float(night["recall_at_k_vs_exact"]) <= 1.0  # type: ignore[arg-type]


def _dialogues(rng: np.random.Generator, prefix: str, count: int) -> pl.DataFrame:
    rows = []
    for d in range(count):
        for t in range(int(rng.integers(2, 6))):
            items = [f"m{int(i)}" for i in rng.choice(30, size=int(rng.integers(0, 3)), replace=False)]
            rows.append({"dialogue_id": f"{prefix}{d}", "turn_idx": t, "mentioned_item_ids": items})
    return pl.DataFrame(rows, schema_overrides={"mentioned_item_ids": pl.List(pl.String)})


@pytest.mark.parametrize("seed", range(3))
def test_new_dialogues_add_their_counts_equal_to_a_full_recount(tmp_path: Path, seed: int) -> None:
    lake, rng = tmp_path / "lake", np.random.default_rng(seed)
    turn_graphs = GraphsConfig(graphs=("co_mention", "transition"))
    _turns(lake, _dialogues(rng, "a", 40))
    build_graphs(lake=lake, config=turn_graphs)
    _turns(lake, _dialogues(rng, "b", 5))
    night = build_graphs(lake=lake, config=turn_graphs).built
    assert {g: night[g]["mode"] for g in night} == {"co_mention": "incremental", "transition": "incremental"}
    assert night["co_mention"]["new_dialogues"] == 5
    updated = {g: _edges(lake, g) for g in night}
    build_graphs(lake=lake, config=turn_graphs, force=True)
    for graph, edges in updated.items():
        assert edges.rows() == _edges(lake, graph).rows()


def test_an_edited_dialogue_or_a_cut_means_a_full_recount(tmp_path: Path) -> None:
    lake, rng = tmp_path / "lake", np.random.default_rng(5)
    turn_graphs = GraphsConfig(graphs=("co_mention", "transition"))
    first = _dialogues(rng, "a", 20)
    _turns(lake, first)
    build_graphs(lake=lake, config=turn_graphs)
    edited = first.head(1).with_columns(mentioned_item_ids=pl.lit(["m1", "m2"], dtype=pl.List(pl.String)))
    _turns(lake, pl.concat([edited, _dialogues(rng, "b", 2)]))
    night = build_graphs(lake=lake, config=turn_graphs).built
    assert {night[g]["mode"] for g in night} == {"full"}
    _turns(lake, _dialogues(rng, "c", 2))
    cut = GraphsConfig(graphs=("transition",), transition_min_count=2)
    build_graphs(lake=lake, config=cut)
    _turns(lake, _dialogues(rng, "d", 2))
    assert build_graphs(lake=lake, config=cut).built["transition"]["mode"] == "full"  # cut counts are not stored
