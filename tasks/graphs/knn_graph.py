"""kNN graph edges of one embedding set: the backend chosen by size, the recall of approximate builds sampled.

``auto`` runs the exact torch backend up to ``exact_max_items`` items and faiss HNSW above: the threshold is
the crossover ``bench/knn.py`` measured (exact cost grows with N**2, HNSW's with about N log N). Every
approximate build measures its recall@k against exact neighbours of a seeded sample of items, computed by
one blocked ``sample x all`` matmul (``knn_rows``), never a full exact index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import polars as pl
import torch

from tasks.graphs.knn import knn_exact, knn_rows
from tasks.graphs.knn_faiss import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    knn_faiss_flat,
    knn_faiss_hnsw_index,
    recall_at_k,
)

Backend = Literal["auto", "torch", "faiss", "faiss-approx"]
BACKENDS: tuple[str, ...] = get_args(Backend)
EXACT_MAX_ITEMS = 15_000  # measured crossover of exact torch and HNSW + recall sample (bench/knn.py, RESULTS.md)
log = logging.getLogger("mmcrs.graphs")


@dataclass(frozen=True)
class KnnConfig:
    """How one kNN graph is built.

    Attributes:
        k: neighbours per item.
        backend: ``auto`` (exact up to ``exact_max_items``, HNSW above), ``torch`` (exact, blocked),
            ``faiss`` (exact flat) or ``faiss-approx`` (HNSW).
        exact_max_items: the ``auto`` threshold.
        block: rows per block of the exact backend and of the recall sample (memory ~ block**2 floats).
        device: torch device of the exact backend (default: CUDA when present).
        hnsw_m: HNSW links per node.
        hnsw_ef_construction: HNSW build beam width.
        hnsw_ef_search: HNSW search beam width.
        recall_sample: items whose exact neighbours measure an approximate build's recall@k.
        symmetrize: add the reverse of every edge (keeping the larger weight).
    """

    k: int = 10
    backend: Backend = "auto"
    exact_max_items: int = EXACT_MAX_ITEMS
    block: int = 4096
    device: str | None = None
    hnsw_m: int = HNSW_M
    hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION
    hnsw_ef_search: int = HNSW_EF_SEARCH
    recall_sample: int = 1000
    symmetrize: bool = False

    def resolved(self, n: int) -> str:
        """The backend that builds a graph of ``n`` items (``auto`` resolved by the threshold)."""
        if self.backend != "auto":
            return self.backend
        return "torch" if n <= self.exact_max_items else "faiss-approx"

    def hnsw(self) -> dict[str, int]:
        """The HNSW parameters, as ``knn_faiss_hnsw`` takes them."""
        return {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction, "ef_search": self.hnsw_ef_search}


def normalised(vectors: np.ndarray) -> torch.Tensor:
    """(N, D) float32 vectors as a torch tensor of unit rows (in place when ``vectors`` is float32 already)."""
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    x /= x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return x


def sampled_recall(
    x: torch.Tensor, indices: np.ndarray, *, k: int, sample: int = 1000, block: int = 4096, seed: int = 0
) -> float:
    """recall@k of the neighbour lists ``indices`` (N, k) against exact neighbours of a seeded sample of rows.

    Args:
        x: (N, D) unit vectors the lists were built from.
        indices: (N, k) neighbour row indices (``-1`` where a list is short).
        k: neighbours compared per row.
        sample: rows sampled (all rows when fewer).
        block: block size of the exact ``sample x all`` search.
        seed: sample seed.
    """
    n = x.shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    exact, _, _, _ = knn_rows(x, torch.from_numpy(rows), k=k, block=block)
    return recall_at_k(indices[rows, :k], exact.numpy())


def knn_lists(x: torch.Tensor, config: KnnConfig) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """(indices, scores, notes) of every item's k nearest neighbours with the resolved backend; the notes say
    which backend ran and, for an approximate one, its sampled recall@k."""
    indices, scores, notes, _ = knn_lists_index(x, config)
    return indices, scores, notes


def knn_lists_index(
    x: torch.Tensor, config: KnnConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, object], object | None]:
    """``knn_lists`` and the HNSW index the lists were searched with (None for exact backends)."""
    backend = config.resolved(x.shape[0])
    notes: dict[str, object] = {"backend": backend}
    if backend == "torch":
        idx_t, sim_t = knn_exact(x, k=config.k, block=config.block, device=config.device)
        return idx_t.numpy(), sim_t.numpy(), notes, None
    if backend == "faiss":
        indices, scores = knn_faiss_flat(x.numpy(), k=config.k)
        return indices, scores, notes, None
    indices, scores, index = knn_faiss_hnsw_index(x.numpy(), k=config.k, **config.hnsw())
    recall = sampled_recall(x, indices, k=indices.shape[1], sample=config.recall_sample, block=config.block)
    notes |= {"recall_at_k_vs_exact": round(recall, 4), "recall_sample": min(config.recall_sample, x.shape[0])}
    log.info("approximate kNN (%s): sampled recall@%d against exact = %.4f", config.hnsw(), config.k, recall)
    return indices, scores, notes, index


def lists_to_edges(ids: pl.Series, rows: np.ndarray, indices: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    """Edges ``src, dst, weight`` of the neighbour lists of ``rows`` (indices into ``ids``); short lists'
    ``-1`` slots are dropped. No Python lists: ids are gathered by index."""
    src = np.repeat(rows.astype(np.int64), indices.shape[1])
    dst, weight = indices.reshape(-1).astype(np.int64), scores.reshape(-1).astype(np.float32)
    keep = dst >= 0
    return pl.DataFrame(
        {
            "src": ids.gather(src[keep]),
            "dst": ids.gather(dst[keep]),
            "weight": weight[keep],
        }
    )


def symmetrized(edges: pl.DataFrame) -> pl.DataFrame:
    """``edges`` plus the reverse of each, keeping the larger weight of a pair."""
    reverse = edges.select(pl.col("dst").alias("src"), pl.col("src").alias("dst"), "weight")
    return pl.concat([edges, reverse]).group_by("src", "dst").agg(pl.col("weight").max())


def knn_edges(ids: pl.Series, vectors: np.ndarray, config: KnnConfig) -> tuple[pl.DataFrame, dict[str, object]]:
    """kNN edges ``src, dst, weight`` over ``ids`` (N) and their (N, D) ``vectors``, and the backend notes.

    A float32 ``vectors`` array is normalised in place (no copy of a large matrix).

    Example:
        >>> edges, notes = knn_edges(pl.Series(["a", "b", "c"]), np.eye(3, dtype=np.float32), KnnConfig(k=1))
        >>> edges.height, notes["backend"]
        (3, 'torch')
    """
    x = normalised(vectors)
    indices, scores, notes = knn_lists(x, config)
    edges = lists_to_edges(ids, np.arange(len(ids)), indices, scores)
    return (symmetrized(edges) if config.symmetrize else edges), notes
