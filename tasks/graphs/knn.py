"""Exact cosine kNN over all items in plain torch: each block pair computed once, memory bounded by the block.

Cosine similarity is symmetric, so for the all-pairs graph only the blocks on and above the diagonal are
multiplied: block (i, j) yields candidates for the rows of block i (its rows) and for the rows of block j
(its columns). Each row keeps a running top-k, merged with every block's own top-(k + slack). Ties are
ordered by similarity, then by the lower item index (so results are the same on every run and backend);
self-matches are excluded. Peak memory is about ``block**2`` floats plus the ``N x (k + slack)`` candidates.
The GPU is used when present.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_TIE_SLACK = 8  # extra candidates per block so equal similarities at the k-th place are resolved by index


def ordered_topk(values: torch.Tensor, indices: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` (values, indices) per row by (value desc, index asc): two stable sorts."""
    by_index = torch.sort(indices, dim=1, stable=True)
    values = torch.gather(values, 1, by_index.indices)
    by_value = torch.sort(values, dim=1, descending=True, stable=True)
    return by_value.values[:, :k], torch.gather(by_index.values, 1, by_value.indices)[:, :k]


def _block_topk(sims: torch.Tensor, offset: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-(k + slack) of each row of a block of similarities, with global column indices."""
    width = min(k + _TIE_SLACK, sims.shape[1])
    top = torch.topk(sims, width, dim=1)
    return top.values, top.indices + offset


class _RunningTopK:
    """Per-row best ``k`` (value, index) pairs seen so far."""

    def __init__(self, n: int, k: int, device: torch.device) -> None:
        self.k = k
        self.values = torch.full((n, 0), float("-inf"), device=device)
        self.indices = torch.zeros((n, 0), dtype=torch.long, device=device)

    def merge(self, rows: slice, values: torch.Tensor, indices: torch.Tensor) -> None:
        cur_v, cur_i = self.values[rows], self.indices[rows]
        v, i = ordered_topk(torch.cat([cur_v, values], 1), torch.cat([cur_i, indices], 1), self.k + _TIE_SLACK)
        if v.shape[1] > self.values.shape[1]:  # first blocks: widen the running buffers
            pad = v.shape[1] - self.values.shape[1]
            self.values = F.pad(self.values, (0, pad), value=float("-inf"))
            self.indices = F.pad(self.indices, (0, pad), value=-1)
        width = v.shape[1]
        self.values[rows, :width], self.indices[rows, :width] = v, i


def knn_exact(
    vectors: torch.Tensor, *, k: int = 10, block: int = 4096, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact cosine k nearest neighbours of every row among all other rows.

    Args:
        vectors: (N, D) float embeddings (normalised here).
        k: neighbours per item (at most N - 1).
        block: rows per block; peak extra memory is about ``block * block`` floats.
        device: where to compute (default: CUDA when present).

    Returns:
        ``(indices, scores)``, both (N, k): neighbour row indices and cosine similarities, best first,
        ties by lower index. On CPU.
    """
    n = vectors.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return torch.zeros((n, 0), dtype=torch.long), torch.zeros((n, 0))
    target = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x = F.normalize(vectors.to(target, torch.float32), dim=1)
    best = _RunningTopK(n, k, target)
    for i in range(0, n, block):
        rows_i = slice(i, min(i + block, n))
        for j in range(i, n, block):
            rows_j = slice(j, min(j + block, n))
            sims = x[rows_i] @ x[rows_j].T  # (bi, bj)
            if i == j:
                sims.fill_diagonal_(float("-inf"))  # no self-matches
            best.merge(rows_i, *_block_topk(sims, j, k))
            if i != j:  # the same block, seen from block j's rows
                best.merge(rows_j, *_block_topk(sims.T.contiguous(), i, k))  # contiguous: topk over rows is ~4x faster
    values, indices = ordered_topk(best.values, best.indices, k)
    return indices.cpu(), values.cpu()


def knn_rows(
    x: torch.Tensor, rows: torch.Tensor, *, k: int = 10, block: int = 4096, reverse: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Exact neighbours of some rows among all rows, and (``reverse``) the best of those rows for every row.

    One blocked pass of ``x[rows] @ x.T``: never an all-pairs matrix, so a sample's or a delta's neighbours
    cost ``len(rows) * N`` dot products. The same similarities, read column-wise, give every item its best
    candidates among ``rows`` (what an incremental update merges into the old items' lists).

    Args:
        x: (N, D) L2-normalised vectors.
        rows: (Q,) row indices to query (distinct).
        k: neighbours per query (self excluded).
        block: rows and columns per block (memory ~ block**2 floats).
        reverse: also return, per item, its top (k + slack) among ``rows`` (self excluded).

    Returns:
        ``(indices, scores, rev_indices, rev_scores)``: (Q, k) global indices and similarities ordered by
        (similarity desc, index asc); the reverse pair is (N, k + slack) with ``-inf`` scores where fewer
        candidates exist, or None without ``reverse``.
    """
    n, q = x.shape[0], rows.shape[0]
    k = min(k, n - 1)
    forward = _RunningTopK(q, k, x.device)
    backward = _RunningTopK(n, k, x.device) if reverse else None
    for qs in range(0, q, block):
        part = rows[qs : qs + block].to(x.device)
        queries = x[part]  # (bq, D)
        for cs in range(0, n, block):
            ce = min(cs + block, n)
            sims = queries @ x[cs:ce].T  # (bq, bc)
            own = part[:, None] == torch.arange(cs, ce, device=x.device)[None, :]
            sims.masked_fill_(own, float("-inf"))  # no self-matches
            forward.merge(slice(qs, qs + part.shape[0]), *_block_topk(sims, cs, k))
            if backward is not None:
                values, local = _block_topk(sims.T.contiguous(), 0, k)
                backward.merge(slice(cs, ce), values, part[local])
    values, indices = ordered_topk(forward.values, forward.indices, k)
    if backward is None:
        return indices.cpu(), values.cpu(), None, None
    rev_v, rev_i = ordered_topk(backward.values, backward.indices, backward.values.shape[1])
    return indices.cpu(), values.cpu(), rev_i.cpu(), rev_v.cpu()
