"""Incremental kNN graphs: a delta of the embeddings costs what changed, not a rebuild.

Against the base build's items (ids with a per-item stamp of ``source_hash`` and ``computed_at``, read from
the base's ``item_embeddings`` version by Delta time travel), the current items split into kept, fresh
(added or changed) and removed. Fresh items get their lists by an exact ``fresh x all`` blocked search; the
same similarities, read column-wise, are each kept item's best fresh candidates, merged into its old list
(a fresh item enters where it beats the k-th neighbour); kept items that lost a neighbour (removed or
changed) are searched exactly again. On an exact base graph the result is the exact rebuild's graph
(same lists, same tie order: similarity desc, then lower item id). On an HNSW base the stage searches the
delta with the base's saved index instead (``tasks.graphs.hnsw_delta``) and uses this exact path only when
that index is missing or unreadable: then the lists the update touches are exact and the rest keep their
recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from tasks.graphs.knn import knn_rows, ordered_topk

LOST = -2  # an old list's slot whose neighbour was removed or changed


@dataclass(frozen=True)
class ItemDelta:
    """How the items changed since the base build.

    Attributes:
        fresh: current row indices (sorted) of added or changed items.
        removed: ids of items gone since the base build.
        changed: how many of ``fresh`` existed before (with another stamp).
        items: current item count.
    """

    fresh: np.ndarray
    removed: pl.Series
    changed: int
    items: int

    @property
    def fraction(self) -> float:
        """Fresh plus removed items, as a fraction of the current items."""
        return (len(self.fresh) + len(self.removed)) / max(self.items, 1)

    def counts(self) -> dict[str, int]:
        """Added, changed and removed item counts (for the run's record)."""
        return {
            "added": len(self.fresh) - self.changed,
            "changed": self.changed,
            "removed": len(self.removed),
        }


def item_delta(current: pl.DataFrame, base: pl.DataFrame) -> ItemDelta:
    """The delta between the base items and the current ones, both frames ``item_id, stamp``; ``current``
    is sorted by ``item_id`` (row index = position)."""
    joined = current.with_row_index("row").join(base.rename({"stamp": "old"}), on="item_id", how="left")
    fresh = joined.filter(pl.col("old").is_null() | (pl.col("old") != pl.col("stamp")))
    removed = base.join(current, on="item_id", how="anti")["item_id"]
    changed = int(fresh["old"].is_not_null().sum())
    return ItemDelta(np.sort(fresh["row"].to_numpy()).astype(np.int64), removed, changed, current.height)


def old_lists(ids: pl.Series, edges: pl.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The base graph's lists in current row indices: (N, k) indices and scores; ``-1`` / ``-inf`` where a
    list is short or the item is new, ``LOST`` where the neighbour is no longer an item.

    Args:
        ids: current item ids, sorted.
        edges: the base graph's ``src, dst, weight, rank`` (rank 1..k within each src).
        k: list length.
    """
    rows = pl.DataFrame({"item": ids, "row": np.arange(len(ids), dtype=np.int64)})
    mapped = (
        edges.filter(pl.col("rank") <= k)
        .join(rows.rename({"item": "src", "row": "src_row"}), on="src", how="inner")
        .join(rows.rename({"item": "dst", "row": "dst_row"}), on="dst", how="left")
    )
    indices = np.full((len(ids), k), -1, dtype=np.int64)
    scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    src, slot = mapped["src_row"].to_numpy(), mapped["rank"].to_numpy().astype(np.int64) - 1
    indices[src, slot] = mapped["dst_row"].fill_null(LOST).to_numpy()
    scores[src, slot] = mapped["weight"].to_numpy()
    return indices, scores


@dataclass(frozen=True)
class KnnUpdate:
    """The updated graph: every item's list, and which lists changed.

    Attributes:
        indices: (N, k) neighbour rows (``-1`` in short lists).
        scores: (N, k) similarities.
        rows: rows whose lists are new or changed (to rewrite).
        searched: rows searched exactly (fresh plus kept items that lost a neighbour).
        entered: kept rows a fresh item entered by merge.
    """

    indices: np.ndarray
    scores: np.ndarray
    rows: np.ndarray
    searched: int
    entered: int


def _merged(
    old_idx: np.ndarray, old_sc: np.ndarray, rev_i: torch.Tensor, rev_v: torch.Tensor, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top-k of its old list and its fresh candidates; empty slots as ``-1`` / ``-inf``."""
    values = torch.cat([torch.from_numpy(old_sc), rev_v], 1)
    indices = torch.cat([torch.from_numpy(old_idx), rev_i], 1)
    values, indices = ordered_topk(values, indices, k)
    indices = torch.where(torch.isinf(values), torch.full_like(indices, -1), indices)
    return indices.numpy(), values.numpy()


def update_knn(
    x: torch.Tensor, old_idx: np.ndarray, old_sc: np.ndarray, fresh: np.ndarray, *, k: int, block: int = 4096
) -> KnnUpdate:
    """Update the base lists (``old_lists``) for the ``fresh`` rows of the unit vectors ``x`` (N, D).

    Returns:
        The ``KnnUpdate``: fresh rows and rows that lost a neighbour searched exactly, the other rows' old
        lists merged with their best fresh candidates.
    """
    n = x.shape[0]
    k = min(k, n - 1)
    old_idx, old_sc = old_idx[:, :k], old_sc[:, :k]
    is_fresh = np.zeros(n, dtype=bool)
    is_fresh[fresh] = True
    lost = ~is_fresh & ((old_idx == LOST).any(1) | np.isin(old_idx, fresh).any(1))
    f_idx, f_sc, rev_i, rev_v = knn_rows(x, torch.from_numpy(fresh), k=k, block=block, reverse=True)
    assert rev_i is not None and rev_v is not None
    indices, scores = _merged(np.where(old_idx < 0, -1, old_idx), old_sc, rev_i, rev_v, k)
    entered = ~is_fresh & ~lost & (indices != old_idx).any(1)
    lost_rows = np.flatnonzero(lost)
    if len(lost_rows):
        l_idx, l_sc, _, _ = knn_rows(x, torch.from_numpy(lost_rows), k=k, block=block)
        indices[lost_rows], scores[lost_rows] = l_idx.numpy(), l_sc.numpy()
    indices[fresh], scores[fresh] = f_idx.numpy(), f_sc.numpy()
    rows = np.flatnonzero(is_fresh | lost | entered)
    return KnnUpdate(indices, scores, rows, len(fresh) + len(lost_rows), int(entered.sum()))
