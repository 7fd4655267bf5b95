"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from training.metrics import (
    evaluate_protocols,
    mean_std,
    mrr_at_k,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
    target_ranks,
)


def test_target_ranks_count_items_scored_strictly_higher() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.4, 0.4, 0.2, 0.8]])
    # row 0: target 2 (0.5) is beaten by 0.9 -> rank 2; row 1: target 0 (0.4) beaten by 0.8, tie with 0.4 -> rank 2
    assert target_ranks(scores, torch.tensor([2, 0])).tolist() == [2, 2]


def test_exclusion_removes_items_from_the_ranking() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1]])
    exclude = torch.tensor([[True, False, False]])
    assert target_ranks(scores, torch.tensor([1]), exclude=exclude).tolist() == [1]


def test_hand_computed_metrics() -> None:
    ranks = torch.tensor([1, 3, 12, 60])
    assert recall_at_k(ranks, 1) == pytest.approx(1 / 4)
    assert recall_at_k(ranks, 10) == pytest.approx(2 / 4)
    assert recall_at_k(ranks, 50) == pytest.approx(3 / 4)
    assert mrr_at_k(ranks, 10) == pytest.approx((1 + 1 / 3) / 4)
    assert mrr_at_k(ranks, 50) == pytest.approx((1 + 1 / 3 + 1 / 12) / 4)
    assert ndcg_at_k(ranks, 10) == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert ndcg_at_k(ranks, 50) == pytest.approx((1 + 0.5 + 1 / math.log2(13)) / 4)
    assert ranking_metrics(ranks)["n"] == 4


def test_empty_ranks_give_zero() -> None:
    assert ranking_metrics(torch.zeros(0, dtype=torch.long))["recall@10"] == 0.0


def test_no_repeats_drops_repeated_targets_and_masks_context() -> None:
    scores = torch.tensor([[0.9, 0.5, 0.7, 0.1], [0.9, 0.5, 0.7, 0.1]])
    targets = torch.tensor([0, 1])  # sample 0 repeats item 0 (in its context)
    contexts = [[0], [0]]
    out = evaluate_protocols(scores, targets, contexts)
    assert out["standard"]["n"] == 2 and out["standard"]["recall@1"] == pytest.approx(0.5)  # ranks 1 and 3
    assert out["standard"]["mrr@10"] == pytest.approx((1 + 1 / 3) / 2)
    # no repeats: only sample 1 remains, item 0 masked -> target 1 (0.5) is beaten by item 2 (0.7): rank 2
    assert out["no_repeats"]["n"] == 1 and out["no_repeats"]["mrr@10"] == pytest.approx(0.5)


def test_mean_std() -> None:
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
