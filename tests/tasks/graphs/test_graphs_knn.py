"""Exact kNN (torch, block pairs) against brute force and faiss; known neighbours; deterministic ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.graphs.knn import knn_exact
from tasks.graphs.knn_faiss import knn_faiss_flat, knn_faiss_hnsw, recall_at_k


def test_known_neighbours_by_hand() -> None:
    # two tight clusters on the unit circle: 0,1,2 near angle 0 and 3,4 near angle pi/2
    angles = torch.tensor([0.0, 0.1, 0.25, 1.5, 1.6])
    vectors = torch.stack([angles.cos(), angles.sin()], 1) * torch.tensor([[1.0], [3.0], [0.5], [2.0], [1.0]])
    indices, scores = knn_exact(vectors, k=2, block=2)  # norms differ: cosine ignores them
    assert indices.tolist() == [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2]]
    assert scores[0, 0] == pytest.approx(float(torch.cos(torch.tensor(0.1))), abs=1e-6)
    assert (indices != torch.arange(5)[:, None]).all()  # never self


@pytest.mark.parametrize("block", [3, 7, 64, 4096])
def test_matches_brute_force_for_every_block_size(block: int) -> None:
    torch.manual_seed(0)
    vectors = torch.randn(200, 16)
    indices, scores = knn_exact(vectors, k=5, block=block)
    x = torch.nn.functional.normalize(vectors, dim=1)
    sims = x @ x.T
    sims.fill_diagonal_(float("-inf"))
    expected = torch.topk(sims, 5, dim=1)
    assert torch.equal(indices, expected.indices)
    assert torch.allclose(scores, expected.values, atol=1e-6)


def test_ties_go_to_the_lower_index_on_every_backend() -> None:
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    torch_idx, _ = knn_exact(torch.from_numpy(vectors), k=2, block=2)
    faiss_idx, _ = knn_faiss_flat(vectors, k=2)
    expected = [[1, 2], [0, 2], [0, 1], [0, 1], [0, 1], [0, 1]]
    assert torch_idx.tolist() == expected and faiss_idx.tolist() == expected


def test_faiss_flat_agrees_with_torch_and_hnsw_recall_is_measured() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((500, 32)).astype(np.float32)
    torch_idx, torch_sim = knn_exact(torch.from_numpy(vectors), k=10, block=128)
    flat_idx, flat_sim = knn_faiss_flat(vectors, k=10)
    assert np.array_equal(torch_idx.numpy(), flat_idx)
    assert np.allclose(torch_sim.numpy(), flat_sim, atol=1e-5)
    hnsw_idx, _ = knn_faiss_hnsw(vectors, k=10)
    assert recall_at_k(flat_idx, flat_idx) == 1.0
    assert 0.8 <= recall_at_k(hnsw_idx, flat_idx) <= 1.0


def test_k_is_capped_by_the_number_of_other_items() -> None:
    indices, _ = knn_exact(torch.eye(3), k=10)
    assert indices.shape == (3, 2)
