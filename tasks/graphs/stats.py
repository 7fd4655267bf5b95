"""Graph statistics per build: nodes, edges, isolated items, degree distribution, neighbour similarity."""

from __future__ import annotations

import numpy as np
import polars as pl


def _degree_stats(degrees: pl.Series, edges: int) -> dict[str, float | int]:
    """Statistics of the out-degree of every input item (isolated ones as 0)."""
    return {
        "nodes": degrees.len(),
        "edges": edges,
        "isolated": int((degrees == 0).sum()),
        "degree_mean": round(float(degrees.mean() or 0.0), 3),
        "degree_p50": int(degrees.quantile(0.5) or 0),
        "degree_p90": int(degrees.quantile(0.9) or 0),
        "degree_max": int(degrees.max() or 0),
    }


def graph_stats(edges: pl.DataFrame, nodes: int, *, similarity: bool = False) -> dict[str, float | int]:
    """Statistics of one graph's edges (``src, dst, weight``) over ``nodes`` input items.

    ``isolated`` counts input items with no outgoing edge; degrees are out-degrees of the input items
    (isolated ones count as 0). ``mean_neighbour_similarity`` (kNN graphs) is the mean edge weight.
    """
    degrees = edges.group_by("src").len()["len"] if edges.height else pl.Series("len", [], dtype=pl.UInt32)
    isolated = max(nodes - degrees.len(), 0)
    all_degrees = pl.concat([degrees.cast(pl.Int64), pl.repeat(0, isolated, dtype=pl.Int64, eager=True)])
    stats = _degree_stats(all_degrees, edges.height) | {"nodes": nodes}
    if similarity:
        stats["mean_neighbour_similarity"] = round(float(edges["weight"].mean() or 0.0), 4)
    return stats


def knn_list_stats(indices: np.ndarray, scores: np.ndarray) -> dict[str, float | int]:
    """``graph_stats`` of a kNN graph straight from its (N, k) neighbour lists (``-1`` where a list is short),
    without building the N x k edge frame: what a nightly update of a large graph records."""
    kept = indices >= 0
    stats = _degree_stats(pl.Series("len", kept.sum(axis=1), dtype=pl.Int64), int(kept.sum()))
    return stats | {"mean_neighbour_similarity": round(float(pl.Series(scores[kept]).mean() or 0.0), 4)}
