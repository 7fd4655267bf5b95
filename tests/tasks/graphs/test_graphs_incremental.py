"""Incremental kNN: updating a graph for added, removed and changed items gives the exact rebuild's graph."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from tasks.graphs.incremental import item_delta, old_lists, update_knn
from tasks.graphs.knn import knn_exact, knn_rows
from tasks.graphs.knn_graph import KnnConfig, knn_lists, lists_to_edges, normalised, sampled_recall


def _graph(ids: list[str], vectors: np.ndarray, k: int) -> pl.DataFrame:
    """The exact graph as stored: ``src, dst, weight, rank``."""
    indices, scores = knn_exact(torch.from_numpy(vectors.copy()), k=k, block=16)
    edges = lists_to_edges(pl.Series(ids), np.arange(len(ids)), indices.numpy(), scores.numpy())
    return edges.with_columns(pl.int_range(1, pl.len() + 1).over("src").cast(pl.Int32).alias("rank"))


def _stamps(ids: list[str], stamps: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"item_id": ids, "stamp": stamps}).sort("item_id")


def _updated(
    old: dict[str, np.ndarray], new: dict[str, np.ndarray], changed: set[str], k: int, block: int
) -> pl.DataFrame:
    """The graph of ``new`` obtained by updating the exact graph of ``old``, as ``src, dst, weight, rank``."""
    old_ids, new_ids = sorted(old), sorted(new)
    base = _graph(old_ids, np.stack([old[i] for i in old_ids]), k)
    delta = item_delta(_stamps(new_ids, [int(i in changed) for i in new_ids]), _stamps(old_ids, [0] * len(old_ids)))
    x = normalised(np.stack([new[i] for i in new_ids]))
    ids = pl.Series(new_ids)
    update = update_knn(x, *old_lists(ids, base, k), delta.fresh, k=k, block=block)
    edges = lists_to_edges(ids, np.arange(len(ids)), update.indices, update.scores)
    return edges.with_columns(pl.int_range(1, pl.len() + 1).over("src").cast(pl.Int32).alias("rank"))


def _assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    got, want = got.sort("src", "rank"), want.sort("src", "rank")
    assert got.select("src", "dst", "rank").rows() == want.select("src", "dst", "rank").rows()
    assert np.allclose(got["weight"].to_numpy(), want["weight"].to_numpy(), atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_update_equals_a_full_exact_rebuild(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, dim, k = int(rng.integers(40, 120)), 8, int(rng.integers(1, 8))
    old = {f"i{j:04d}": rng.standard_normal(dim).astype(np.float32) for j in rng.permutation(400)[:n]}
    new = dict(old)
    names = sorted(old)
    for name in rng.choice(names, size=int(rng.integers(0, 6)), replace=False):  # removed
        del new[name]
    changed = {str(c) for c in rng.choice(sorted(new), size=int(rng.integers(0, 6)), replace=False)}
    for name in changed:
        new[name] = rng.standard_normal(dim).astype(np.float32)
    for j in range(int(rng.integers(1, 15))):  # added, ids interleaved with the old ones
        new[f"i{int(rng.integers(0, 400)):04d}x{j}"] = rng.standard_normal(dim).astype(np.float32)
    ids = sorted(new)
    want = _graph(ids, np.stack([new[i] for i in ids]), k)
    _assert_same(_updated(old, new, changed, k, block=int(rng.integers(3, 50))), want)


def test_ties_keep_the_lower_id_after_an_update() -> None:
    # one-hot and all-ones/2 vectors: every similarity (0, 0.5, 1) is exact, so ties are real and many (fewer
    # than k + 8 at the k-th place: the exact search's tie slack)
    basis = np.eye(4, dtype=np.float32)
    old = {f"a{j:02d}": basis[j % 4] for j in range(9)}
    new = dict(old) | {"a05b": basis[1], "a00b": basis[0], "z": np.ones(4, np.float32), "a02": basis[1]}
    del new["a07"]
    ids = sorted(new)
    want = _graph(ids, np.stack([new[i] for i in ids]), 4)
    _assert_same(_updated(old, new, {"a02"}, 4, block=5), want)


def test_knn_rows_matches_the_all_pairs_search_and_its_reverse() -> None:
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(90, 6), dim=1)
    rows = torch.tensor([3, 17, 40, 41, 88])
    idx, _, rev_i, rev_v = knn_rows(x, rows, k=4, block=7, reverse=True)
    full_idx, _ = knn_exact(x, k=4, block=7)
    assert torch.equal(idx, full_idx[rows])
    assert rev_i is not None and rev_v is not None
    sims = x @ x[rows].T  # (N, Q): each item against the queried rows
    sims[rows, torch.arange(len(rows))] = float("-inf")
    best = rows[torch.topk(sims, 3, dim=1).indices]
    assert torch.equal(rev_i[:, :3], best)


def test_an_update_of_an_hnsw_graph_keeps_its_recall() -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((20, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 20, 2100)] + 0.3 * rng.standard_normal((2100, 32)).astype(np.float32)
    ids = [f"i{j:05d}" for j in range(2100)]
    config = KnnConfig(k=10, backend="faiss-approx", recall_sample=300)
    x_old = normalised(vectors[:2000].copy())
    indices, scores, notes = knn_lists(x_old, config)
    base = lists_to_edges(pl.Series(ids[:2000]), np.arange(2000), indices, scores)
    base = base.with_columns(pl.int_range(1, pl.len() + 1).over("src").cast(pl.Int32).alias("rank"))
    delta = item_delta(_stamps(ids, [0] * 2100), _stamps(ids[:2000], [0] * 2000))
    x = normalised(vectors.copy())
    update = update_knn(x, *old_lists(pl.Series(ids), base, 10), delta.fresh, k=10)
    after = sampled_recall(x, update.indices, k=10, sample=300)
    assert after >= float(notes["recall_at_k_vs_exact"]) - 0.02  # type: ignore[arg-type]
    assert len(update.rows) >= 100 and update.searched == 100
