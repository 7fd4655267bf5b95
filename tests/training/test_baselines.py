"""Baselines: EASE's closed form, the tuned item-kNN's shrinkage and neighbourhood, and every contender
scored on the fixture lake under both protocols."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.baselines import (
    EASE_LAMBDAS,
    EASE_MAX_ITEMS,
    KNN_NEIGHBOURS,
    KNN_SHRINKAGES,
    SplitScorer,
    cosine_knn,
    ease_skip_reason,
    ease_weights,
    evaluate_baselines,
    gram_matrix,
    grid_search,
    tune_baselines,
)
from training.data import DataOptions, TrainingData, load_training_data
from training.metrics import PROTOCOLS

# 5 dialogues x 4 items
TOY = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=np.float64)


@pytest.mark.parametrize("l2", [0.5, 2.0, 10.0])
def test_ease_matches_the_numpy_closed_form(l2: float) -> None:
    gram = TOY.T @ TOY
    precision = np.linalg.inv(gram + l2 * np.eye(4))
    expected = np.eye(4) - precision / np.diag(precision)  # column j divided by P[j, j]
    got = ease_weights(torch.tensor(gram), l2).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.all(np.diag(got) == 0)


def test_ease_over_items_without_dialogues_equals_the_full_inverse() -> None:
    wide = np.concatenate([TOY[:, :2], np.zeros((5, 2)), TOY[:, 2:]], axis=1)  # items 2 and 3 in no dialogue
    gram = wide.T @ wide
    precision = np.linalg.inv(gram + 2.0 * np.eye(6))
    expected = np.eye(6) - precision / np.diag(precision)
    got = ease_weights(torch.tensor(gram), 2.0).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert not got[2:4].any() and not got[:, 2:4].any()


def test_ease_by_hand_on_two_items() -> None:
    # G = [[2, 1], [1, 1]], l2 = 1: P = inv([[3, 1], [1, 2]]) = [[2, -1], [-1, 3]] / 5
    # B[0, 1] = -P[0, 1] / P[1, 1] = 1/3, B[1, 0] = -P[1, 0] / P[0, 0] = 1/2
    got = ease_weights(torch.tensor([[2.0, 1.0], [1.0, 1.0]], dtype=torch.float64), 1.0)
    assert got.flatten().tolist() == pytest.approx([0.0, 1 / 3, 1 / 2, 0.0])


def test_cosine_by_hand() -> None:
    # items 0 and 2 share one dialogue, each is in 3: 1 / sqrt(3 * 3); with shrinkage 1: 1 / (3 + 1)
    gram = torch.tensor(TOY.T @ TOY)
    assert float(cosine_knn(gram, shrinkage=0.0, neighbours=None)[0, 2]) == pytest.approx(1 / 3)
    assert float(cosine_knn(gram, shrinkage=1.0, neighbours=None)[0, 2]) == pytest.approx(1 / 4)
    assert float(cosine_knn(gram, shrinkage=0.0, neighbours=None)[0, 0]) == 0.0


def _rare_versus_popular() -> torch.Tensor:
    """Item 0 (the context) is in 12 dialogues: 10 with one rare item each (items 1..10, in no other
    dialogue), 2 with item 11, which is in 40 dialogues. Cosine: rare 1/sqrt(12) ~ 0.289 beats item 11's
    2/sqrt(480) ~ 0.091; shrinkage 50: rare 1/(3.46 + 50) ~ 0.019 loses to 2/(21.9 + 50) ~ 0.028."""
    gram = torch.zeros(12, 12, dtype=torch.float64)
    gram[0, 0], gram[11, 11] = 12, 40
    gram[0, 11] = gram[11, 0] = 2
    for rare in range(1, 11):
        gram[rare, rare] = 1
        gram[0, rare] = gram[rare, 0] = 1
    return gram


def test_shrinkage_moves_the_well_supported_neighbour_to_the_top() -> None:
    gram = _rare_versus_popular()
    plain = cosine_knn(gram, shrinkage=0.0, neighbours=None)[0]
    shrunk = cosine_knn(gram, shrinkage=50.0, neighbours=None)[0]
    assert int((plain > plain[11]).sum()) == 10  # item 11 ranks 11th after the 10 rare items
    assert int(shrunk.argmax()) == 11
    assert float(shrunk[11]) == pytest.approx(2 / (480**0.5 + 50))


def test_neighbourhood_size_keeps_each_rows_largest() -> None:
    gram = _rare_versus_popular()
    top1 = cosine_knn(gram, shrinkage=50.0, neighbours=1)
    assert torch.count_nonzero(top1[0]) == 1 and float(top1[0, 11]) > 0
    assert torch.count_nonzero(cosine_knn(gram, shrinkage=50.0, neighbours=None)[0]) == 11


def test_grid_search_picks_the_shrinkage_that_ranks_the_validation_target() -> None:
    gram = _rare_versus_popular()
    scorer = SplitScorer(torch.tensor([11]), [[0]], torch.zeros(12))
    grid = [{"shrinkage": s, "neighbours": None} for s in (0.0, 10.0, 50.0)]
    best = grid_search(grid, lambda **kw: cosine_knn(gram, **kw), scorer)
    # s=0: item 11 ranks 11th (recall@10 0); s=10: 1/(3.46+10) ~ 0.074 vs 2/(21.9+10) ~ 0.063, 11th again;
    # s=50: first.
    assert best == {"shrinkage": 50.0, "neighbours": None, "valid_recall@10": 1.0}
    tied = [{"shrinkage": 50.0, "neighbours": 1}, {"shrinkage": 50.0, "neighbours": None}]
    best = grid_search(tied, lambda **kw: cosine_knn(gram, **kw), scorer, split="x")
    assert best == {"shrinkage": 50.0, "neighbours": 1, "x_recall@10": 1.0}  # the first best wins ties


def test_ease_is_skipped_on_a_large_catalog() -> None:
    assert ease_skip_reason(EASE_MAX_ITEMS) is None
    assert "too large" in (ease_skip_reason(EASE_MAX_ITEMS + 1) or "")


@pytest.fixture
def data(fixture_lake: str) -> TrainingData:
    return load_training_data(DataOptions(), lake=fixture_lake)


def test_gram_diagonal_counts_training_dialogues(data: TrainingData) -> None:
    gram = gram_matrix(data)
    assert torch.equal(gram, gram.T)
    assert float(gram.diagonal().sum()) > 0 and float(gram.diagonal().max()) <= len(data.split.train)


def test_fixture_lake_scores_every_contender_on_both_protocols(data: TrainingData) -> None:
    params = tune_baselines(data)
    assert params["ease"]["l2"] in EASE_LAMBDAS
    assert params["itemknn_tuned"]["shrinkage"] in KNN_SHRINKAGES
    assert params["itemknn_tuned"]["neighbours"] in KNN_NEIGHBOURS
    results, skipped = evaluate_baselines(data, "test")
    assert skipped == {}
    assert set(results) == {"popularity", "comention_knn", "itemknn_tuned", "ease", "text_similarity"}
    for metrics in results.values():
        assert set(metrics) == set(PROTOCOLS)
        assert metrics["standard"]["n"] > 0
    # dialogues stay within a cluster: the co-occurrence contenders beat popularity
    for name in ("itemknn_tuned", "ease"):
        assert results[name]["no_repeats"]["recall@10"] >= results["popularity"]["no_repeats"]["recall@10"]
    assert evaluate_baselines(data, "test", params=params)[0] == results


def test_params_without_ease_skip_it_with_a_reason(data: TrainingData) -> None:
    params = {"itemknn_tuned": {"shrinkage": 0.0, "neighbours": None}}
    results, skipped = evaluate_baselines(data, "test", params=params)
    assert "ease" not in results and skipped == {"ease": "no EASE l2 in params"}
