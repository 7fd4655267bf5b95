"""Incremental kNN over the persisted HNSW index of an approximate graph: a delta costs the delta's searches.

A graph built with HNSW keeps its faiss index as a blob in the lake's content-addressed store
(``<lake>/_blobs/graphs``), with a second blob naming the item of each index row (null where the row is
dead). HNSW cannot remove vectors, so on a delta the rows of removed and changed items are marked dead and
filtered out of every result (searches ask for a few more results to make up for them); fresh (added or
changed) vectors are added to the index and searched with it, ``widen * k`` wide. Those wide results are
also the reverse candidates: an old item found by a fresh item gets that fresh item in its list when it
beats the list's k-th (scores are exact inner products of the stored unit vectors). Old items that lost a
neighbour are searched again with the index. The updated index is saved as a new blob.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from features.blobs import BlobStore
from features.lake import Lake
from tasks.graphs.incremental import LOST, ItemDelta, KnnUpdate
from tasks.graphs.knn import ordered_topk
from tasks.graphs.knn_faiss import HNSW_EF_SEARCH

INDEX_KEYS = ("hnsw_index", "hnsw_rows")  # the blob ids recorded with a graph built or updated with HNSW
_SLACK = 8  # extra results per search, for ties at the k-th place and dead rows


def graph_index_store(lake: Lake) -> BlobStore:
    """The graph index blob store of a lake: ``<lake root>/_blobs/graphs``, with the lake's storage options."""
    return BlobStore(lake.path("_blobs", "graphs"), storage_options=lake.options())


@dataclass(frozen=True)
class HnswIndex:
    """A faiss HNSW index and the item id of each of its rows (null where the row is dead).

    Attributes:
        index: the ``faiss.IndexHNSWFlat`` (inner product over unit vectors).
        rows: item id per index row.
    """

    index: object
    rows: pl.Series


def save_index(store: BlobStore, hnsw: HnswIndex) -> dict[str, str]:
    """Store the index and its row ids as two blobs: ``{"hnsw_index": sha, "hnsw_rows": sha}``."""
    import faiss

    buffer = io.BytesIO()
    pl.DataFrame({"item_id": hnsw.rows}).write_ipc(buffer)
    shas = store.put_many([faiss.serialize_index(hnsw.index).tobytes(), buffer.getvalue()])
    return dict(zip(INDEX_KEYS, shas, strict=True))


def load_index(store: BlobStore, refs: dict[str, str]) -> HnswIndex:
    """The index saved by ``save_index`` (checksums verified).

    Raises:
        FileNotFoundError: a blob is missing.
        BlobIntegrityError: a blob fails its checksum.
        ValueError: the blobs do not match (row count differs from the index size).
    """
    import faiss

    raw = np.frombuffer(store.get(refs[INDEX_KEYS[0]]), dtype=np.uint8)
    index = faiss.deserialize_index(raw)
    rows = pl.read_ipc(io.BytesIO(store.get(refs[INDEX_KEYS[1]])))["item_id"]
    if index.ntotal != len(rows):
        raise ValueError(f"HNSW index has {index.ntotal} rows but its row ids list {len(rows)}")
    return HnswIndex(index, rows)


def _search(
    hnsw: HnswIndex, to_row: np.ndarray, x: np.ndarray, own: np.ndarray, width: int, ef_search: int
) -> tuple[np.ndarray, np.ndarray]:
    """Search unit rows ``x`` (current rows ``own``): results in current rows ordered by (score desc, row asc),
    self and dead rows dropped (``-1`` / ``-inf``)."""
    index = hnsw.index
    width = min(width, index.ntotal)  # type: ignore[attr-defined]
    index.hnsw.efSearch = max(ef_search, width)  # type: ignore[attr-defined]
    scores, found = index.search(np.ascontiguousarray(x), width)  # type: ignore[attr-defined]
    rows = np.where(found >= 0, to_row[np.maximum(found, 0)], -1)
    bad = (rows < 0) | (rows == own[:, None])
    rows, scores = np.where(bad, -1, rows), np.where(bad, -np.inf, scores).astype(np.float32)
    order = np.lexsort((rows, -scores), axis=1)
    return np.take_along_axis(rows, order, 1), np.take_along_axis(scores, order, 1)


def _reverse(
    found: np.ndarray, scores: np.ndarray, fresh: np.ndarray, is_fresh: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per old item found by fresh items: (items, (M, k) best fresh rows, their scores), ``-1`` / ``-inf`` pad."""
    src = np.repeat(fresh, found.shape[1])
    old, sc = found.reshape(-1), scores.reshape(-1)
    keep = (old >= 0) & ~is_fresh[np.maximum(old, 0)]
    src, old, sc = src[keep], old[keep], sc[keep]
    order = np.lexsort((src, -sc, old))
    src, old, sc = src[order], old[order], sc[order]
    items, first = np.unique(old, return_index=True)
    rank = np.arange(len(old)) - np.repeat(first, np.diff(np.append(first, len(old))))
    keep = rank < k
    at = np.searchsorted(items, old[keep])
    rev_i = np.full((len(items), k), -1, dtype=np.int64)
    rev_v = np.full((len(items), k), -np.inf, dtype=np.float32)
    rev_i[at, rank[keep]], rev_v[at, rank[keep]] = src[keep], sc[keep]
    return items, rev_i, rev_v


def _current_rows(hnsw: HnswIndex, ids: pl.Series, fresh: np.ndarray) -> np.ndarray:
    """The current row of each index row's item; ``-1`` where removed or changed (a fresh row replaces it)."""
    current = pl.DataFrame({"item_id": ids, "row": np.arange(len(ids), dtype=np.int64)})
    rows = pl.DataFrame({"item_id": hnsw.rows}).with_row_index("at").join(current, on="item_id", how="left")
    to_row = np.full(len(hnsw.rows), -1, dtype=np.int64)
    to_row[rows["at"].to_numpy()] = rows["row"].fill_null(-1).to_numpy()
    to_row[np.isin(to_row, fresh)] = -1
    return to_row


def update_hnsw(
    x: torch.Tensor,
    ids: pl.Series,
    old: tuple[np.ndarray, np.ndarray],
    delta: ItemDelta,
    hnsw: HnswIndex,
    *,
    k: int,
    ef_search: int = HNSW_EF_SEARCH,
    widen: int = 3,
) -> tuple[KnnUpdate, HnswIndex]:
    """Update the base lists ``old`` (``old_lists``: (N, k) indices and scores) for ``delta`` with the base's
    HNSW index (``x``: current unit vectors, ``ids``: current item ids, sorted).

    Returns:
        The ``KnnUpdate`` and the index with the fresh vectors added (in place) and the rows of removed and
        changed items dead.
    """
    n, fresh, k = x.shape[0], delta.fresh, min(k, x.shape[0] - 1)
    old_idx, old_sc = np.where(old[0][:, :k] < 0, -1, old[0][:, :k]), old[1][:, :k].copy()
    xn = x.numpy()
    to_row = np.concatenate([_current_rows(hnsw, ids, fresh), fresh])
    hnsw.index.add(np.ascontiguousarray(xn[fresh]))  # type: ignore[attr-defined]
    rows = pl.concat([hnsw.rows.clone().scatter(np.flatnonzero(to_row[: len(hnsw.rows)] < 0), None), ids.gather(fresh)])
    updated = HnswIndex(hnsw.index, rows)
    is_fresh = np.zeros(n, dtype=bool)
    is_fresh[fresh] = True
    f_idx, f_sc = _search(updated, to_row, xn[fresh], fresh, widen * k + 1 + _SLACK, ef_search)
    items, rev_i, rev_v = _reverse(f_idx, f_sc, fresh, is_fresh, k)
    indices, scores = old_idx.copy(), old_sc
    if len(items):
        merged_v, merged_i = ordered_topk(
            torch.from_numpy(np.concatenate([old_sc[items], rev_v], 1)),
            torch.from_numpy(np.concatenate([old_idx[items], rev_i], 1)),
            k,
        )
        indices[items] = torch.where(torch.isinf(merged_v), -1, merged_i).numpy()
        scores[items] = merged_v.numpy()
    lost = ~is_fresh & ((old[0][:, :k] == LOST).any(1) | np.isin(old_idx, fresh).any(1))
    entered = ~is_fresh & ~lost & (indices != old_idx).any(1)
    lost_rows = np.flatnonzero(lost)
    if len(lost_rows):
        l_idx, l_sc = _search(updated, to_row, xn[lost_rows], lost_rows, k + 1 + _SLACK, ef_search)
        indices[lost_rows], scores[lost_rows] = l_idx[:, :k], l_sc[:, :k]
    indices[fresh], scores[fresh] = f_idx[:, :k], f_sc[:, :k]
    changed = np.flatnonzero(is_fresh | lost | entered)
    return KnnUpdate(indices, scores, changed, len(fresh) + len(lost_rows), int(entered.sum())), updated
