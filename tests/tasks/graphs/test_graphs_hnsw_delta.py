"""Deltas over an HNSW graph: the persisted index is updated and searched, recall holds, dead items stay out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import features
from features import CommitInfo
from features.blobs import BlobIntegrityError
from tasks.graphs.hnsw_delta import HnswIndex, graph_index_store, load_index, save_index, update_hnsw
from tasks.graphs.incremental import item_delta, old_lists
from tasks.graphs.knn import knn_exact
from tasks.graphs.knn_faiss import knn_faiss_hnsw_index, recall_at_k
from tasks.graphs.knn_graph import lists_to_edges, normalised
from tasks.graphs.stage import GraphsConfig, build_graphs
from tests.tasks.graphs.test_graphs_stage_delta import _edges, _embed, _latest_counts


def _clustered(rng: np.random.Generator, n: int, dim: int = 32, clusters: int = 20) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_index_updated_for_a_delta_keeps_recall_against_exact() -> None:
    rng, k = np.random.default_rng(0), 10
    old_ids = [f"i{j:05d}" for j in range(0, 6000, 2)]
    old_x = _clustered(rng, len(old_ids))
    indices, scores, index = knn_faiss_hnsw_index(old_x, k=k)
    base = lists_to_edges(pl.Series(old_ids), np.arange(len(old_ids)), indices, scores)
    base = base.with_columns(pl.int_range(1, pl.len() + 1).over("src").cast(pl.Int32).alias("rank"))
    vectors = dict(zip(old_ids, old_x, strict=True))
    for name in old_ids[:40]:  # removed
        del vectors[name]
    changed = set(old_ids[40:70])
    for name, vector in zip(sorted(changed), _clustered(rng, 30), strict=True):
        vectors[name] = vector
    for j, vector in enumerate(_clustered(rng, 60)):  # added, ids interleaved
        vectors[f"i{2 * j + 1:05d}"] = vector
    ids = pl.Series(sorted(vectors))
    stamps = pl.DataFrame({"item_id": ids, "stamp": [int(i in changed) for i in ids]})
    delta = item_delta(stamps, pl.DataFrame({"item_id": old_ids, "stamp": [0] * len(old_ids)}))
    x = normalised(np.stack([vectors[i] for i in ids]))
    update, updated = update_hnsw(x, ids, old_lists(ids, base, k), delta, HnswIndex(index, pl.Series(old_ids)), k=k)
    exact, _ = knn_exact(x.clone(), k=k, block=1024)
    assert recall_at_k(update.indices, exact.numpy()) >= 0.95
    assert recall_at_k(update.indices[delta.fresh], exact.numpy()[delta.fresh]) >= 0.95
    assert ((update.indices >= 0) & (update.indices < len(ids))).all() and update.searched >= len(delta.fresh)
    assert updated.index.ntotal == len(old_ids) + len(delta.fresh)  # type: ignore[attr-defined]
    assert updated.rows.null_count() == 40 + 30 and set(updated.rows.drop_nulls()) == set(ids)


def test_the_index_blob_round_trips_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    x = _clustered(np.random.default_rng(1), 500)
    _, _, index = knn_faiss_hnsw_index(x, k=5)
    store = graph_index_store(features.resolve_lake(tmp_path / "lake"))
    refs = save_index(store, HnswIndex(index, pl.Series([f"a{j}" for j in range(500)])))
    loaded = load_index(store, refs)
    assert loaded.rows.to_list() == [f"a{j}" for j in range(500)]
    assert (loaded.index.search(x[:20], 5)[1] == index.search(x[:20], 5)[1]).all()  # type: ignore[attr-defined]
    Path(store.root, store.key(refs["hnsw_index"])).write_bytes(b"not an index")
    with pytest.raises(BlobIntegrityError):
        load_index(store, refs)


def _night(lake: Path, rng: np.random.Generator, config: GraphsConfig, day: int) -> dict[str, object]:
    """Add 20 items, change 5 and remove 6 of the first 2000, then run the stage."""
    base = [f"i{j:05d}" for j in range(2000)]
    _embed(lake, [f"n{day}x{j:03d}" for j in range(20)], _clustered(rng, 20), when=day)
    _embed(lake, base[100 * day : 100 * day + 5], _clustered(rng, 5), when=day)
    gone = base[100 * day + 10 : 100 * day + 16]
    features.delete_keys("item_embeddings", pl.DataFrame({"item_id": gone, "modality": "text",
                         "model_id": "enc-1"}), commit=CommitInfo(stage="embed"), lake=lake)  # fmt: skip
    night = build_graphs(lake=lake, config=config).built["text_knn"]
    edges = _edges(lake, "text_knn")
    assert not edges.filter(pl.col("src").is_in(gone) | pl.col("dst").is_in(gone)).height
    return night


def test_a_delta_over_an_hnsw_graph_searches_its_saved_index_and_falls_back_without_it(tmp_path: Path) -> None:
    lake, rng = tmp_path / "lake", np.random.default_rng(2)
    config = GraphsConfig(graphs=("text_knn",), k=5, exact_max_items=500, recall_sample=300)
    _embed(lake, [f"i{j:05d}" for j in range(2000)], _clustered(rng, 2000), when=1)
    full = build_graphs(lake=lake, config=config).built["text_knn"]
    assert full["backend"] == "faiss-approx" and "hnsw_index" in full
    night = _night(lake, rng, config, day=2)
    assert night["mode"] == "incremental" and night["delta_search"] == "hnsw"
    assert (night["added"], night["changed"], night["removed"]) == (20, 5, 6)
    assert float(night["recall_at_k_vs_exact"]) >= 0.95  # type: ignore[arg-type]
    counts = _latest_counts(lake, "text_knn")
    assert counts["hnsw_index"] == night["hnsw_index"] != full["hnsw_index"]
    meta = json.loads(features.history("item_graph_edges", lake=lake)["metadata"][0])
    assert meta["hnsw_index"] == night["hnsw_index"] and meta["hnsw_rows"] == night["hnsw_rows"]
    store = graph_index_store(features.resolve_lake(lake))
    assert not store.exists(str(full["hnsw_index"])) and not store.exists(str(full["hnsw_rows"]))  # replaced: pruned
    assert store.exists(str(night["hnsw_index"])) and store.exists(str(night["hnsw_rows"]))
    Path(store.root, store.key(str(night["hnsw_index"]))).unlink()
    fallback = _night(lake, rng, config, day=3)
    assert fallback["mode"] == "incremental" and fallback["delta_search"] == "exact"
    assert float(fallback["recall_at_k_vs_exact"]) >= 0.95  # type: ignore[arg-type]
    assert "hnsw_index" not in fallback
