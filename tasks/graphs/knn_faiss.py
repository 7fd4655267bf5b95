"""faiss kNN backends: ``IndexFlatIP`` (exact) and HNSW (approximate, for large catalogs).

Vectors are L2-normalised so inner product is cosine. The HNSW defaults (M 16, efConstruction 64,
efSearch 96) held recall@10 0.966 in ``bench/knn.py`` on clustered 384-d vectors at 1M items (efSearch 64:
0.954, too close to the 0.95 the graphs promise; 96 costs ~30 % more search time).
Results follow the exact backend's conventions: self excluded, best first, ties by lower
index (exact ties are re-ordered after the search).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("mmcrs.graphs")


def _normalised(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


HNSW_M = 16  # the HNSW defaults (bench/knn.py, bench/RESULTS.md): links per node,
HNSW_EF_CONSTRUCTION = 64  # build beam width,
HNSW_EF_SEARCH = 96  # search beam width (64 gave recall@10 0.954 at 1M x 384, too close to 0.95; 96: 0.966)
_TIE_SLACK = 8  # extra results per query so equal scores at the k-th place are resolved by index


def _drop_self(indices: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (or its weakest result when self was not returned), order by score desc
    then index asc, keep ``k``."""
    n = indices.shape[0]
    own = indices == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    keep_i = indices[~own].reshape(n, -1)
    keep_s = scores[~own].reshape(n, -1)
    order = np.lexsort((keep_i, -keep_s), axis=1)[:, :k]
    return np.take_along_axis(keep_i, order, 1), np.take_along_axis(keep_s, order, 1)


def knn_faiss_flat(vectors: np.ndarray, *, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN with ``faiss.IndexFlatIP``: (indices, scores), each (N, k)."""
    import faiss

    x = _normalised(vectors)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    scores, indices = index.search(x, min(k + 1 + _TIE_SLACK, len(x)))
    return _drop_self(indices, scores, min(k, len(x) - 1))


def hnsw_index(x: np.ndarray, *, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION) -> object:
    """An inner-product ``faiss.IndexHNSWFlat`` over the unit rows ``x`` (row i = id i)."""
    import faiss

    index = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(np.ascontiguousarray(x, dtype=np.float32))
    return index


def knn_faiss_hnsw_index(
    vectors: np.ndarray,
    *,
    k: int = 10,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int = HNSW_EF_SEARCH,
) -> tuple[np.ndarray, np.ndarray, object]:
    """Approximate cosine kNN with an HNSW index: (indices, scores, the index), lists (N, k)."""
    x = _normalised(vectors)
    index = hnsw_index(x, m=m, ef_construction=ef_construction)
    index.hnsw.efSearch = max(ef_search, k + 1)  # type: ignore[attr-defined]
    scores, indices = index.search(x, min(k + 1 + _TIE_SLACK, len(x)))  # type: ignore[attr-defined]
    return (*_drop_self(indices, scores, min(k, len(x) - 1)), index)


def knn_faiss_hnsw(
    vectors: np.ndarray,
    *,
    k: int = 10,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int = HNSW_EF_SEARCH,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate cosine kNN with an HNSW index: (indices, scores), each (N, k)."""
    indices, scores, _ = knn_faiss_hnsw_index(vectors, k=k, m=m, ef_construction=ef_construction, ef_search=ef_search)
    return indices, scores


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of each row's exact neighbours that the approximate search found."""
    if exact.size == 0:
        return 1.0
    if approx.size == 0:
        return 0.0
    found = (approx[:, :, None] == exact[:, None, :]).any(axis=1)  # (Q, k): each exact neighbour found?
    return float(found.mean())
