"""Full-ranking CRS metrics as pure functions: Recall@k, MRR@k, NDCG@k, under two protocols.

Every sample has exactly one relevant item (its target). The rank of the target is 1 + the number of
items scored strictly higher (ties resolve in the target's favour). Protocols:

- ``standard``: every sample, every item ranked.
- ``no_repeats``: samples whose target was already mentioned earlier in the dialogue are left out (they
  inflate scores, as re-evaluations of UniCRS-era models showed), and the context items are removed from
  the ranking (under this protocol they can never be the answer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

KS_RECALL = (1, 10, 50)
KS_RANKED = (10, 50)
PROTOCOLS = ("standard", "no_repeats")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, *, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """1-based rank of each target among all items.

    Args:
        scores: (N, I) item scores.
        targets: (N,) target item positions.
        exclude: optional (N, I) bool mask of items removed from the ranking (never the target).
    """
    scores = scores.float()
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    target_scores = scores.gather(1, targets.view(-1, 1))  # (N, 1)
    return (scores > target_scores).sum(dim=1) + 1


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Share of samples whose target ranks in the top ``k``."""
    return float((ranks <= k).float().mean()) if len(ranks) else 0.0


def mrr_at_k(ranks: torch.Tensor, k: int) -> float:
    """Mean reciprocal rank, counting 0 beyond ``k``."""
    if not len(ranks):
        return 0.0
    return float(torch.where(ranks <= k, 1.0 / ranks.float(), torch.zeros(())).mean())


def ndcg_at_k(ranks: torch.Tensor, k: int) -> float:
    """NDCG with one relevant item: 1 / log2(rank + 1) within the top ``k``, else 0 (the ideal DCG is 1)."""
    if not len(ranks):
        return 0.0
    gains = 1.0 / torch.log2(ranks.double() + 1.0)
    return float(torch.where(ranks <= k, gains, torch.zeros((), dtype=torch.double)).mean())


def ranking_metrics(ranks: torch.Tensor) -> dict[str, float]:
    """Recall@1/10/50, MRR@10/50, NDCG@10/50 and the sample count of a rank vector."""
    out = {f"recall@{k}": recall_at_k(ranks, k) for k in KS_RECALL}
    out |= {f"mrr@{k}": mrr_at_k(ranks, k) for k in KS_RANKED}
    out |= {f"ndcg@{k}": ndcg_at_k(ranks, k) for k in KS_RANKED}
    out["n"] = float(len(ranks))
    return out


def context_mask(contexts: Sequence[Sequence[int]], n_items: int) -> torch.Tensor:
    """(N, I) bool mask with True at each sample's context item positions."""
    mask = torch.zeros(len(contexts), n_items, dtype=torch.bool)
    for row, items in enumerate(contexts):
        if items:
            mask[row, torch.tensor(list(items), dtype=torch.long)] = True
    return mask


def evaluate_protocols(
    scores: torch.Tensor, targets: torch.Tensor, contexts: Sequence[Sequence[int]]
) -> dict[str, dict[str, float]]:
    """Metrics under both protocols.

    Args:
        scores: (N, I) item scores.
        targets: (N,) target positions.
        contexts: per sample, the positions of the items mentioned before the target's turn.

    Returns:
        ``{"standard": {...}, "no_repeats": {...}}``.
    """
    mask = context_mask(contexts, scores.shape[1])
    repeat = mask.gather(1, targets.view(-1, 1)).squeeze(1)  # (N,)
    keep = ~repeat
    return {
        "standard": ranking_metrics(target_ranks(scores, targets)),
        "no_repeats": ranking_metrics(target_ranks(scores[keep], targets[keep], exclude=mask[keep])),
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
