"""Graph statistics: the list-based kNN statistics equal those of the edge frame they stand for."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tasks.graphs.knn_graph import lists_to_edges
from tasks.graphs.stats import graph_stats, knn_list_stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_list_stats_equal_graph_stats_of_the_edges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 200, 7
    indices = rng.integers(0, n, size=(n, k))
    indices[rng.random((n, k)) < 0.2] = -1  # short lists
    indices[:5] = -1  # isolated items
    scores = rng.random((n, k), dtype=np.float32)
    ids = pl.Series([f"i{j:04d}" for j in range(n)])
    edges = lists_to_edges(ids, np.arange(n), indices, scores)
    assert knn_list_stats(indices, scores) == graph_stats(edges, n, similarity=True)
    assert knn_list_stats(indices, scores)["isolated"] >= 5
