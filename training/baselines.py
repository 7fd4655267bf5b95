"""Baselines scored on the same split and protocols as the model: popularity, co-mention item-kNN, a tuned
item-kNN (cosine with shrinkage, top-k neighbours), EASE and text similarity.

Each baseline turns samples into an (N, I) score matrix; ``evaluate_baselines`` runs them through
``training.metrics.evaluate_protocols``. Popularity (train-split mention counts, x 1e-6) breaks the kNN
baselines' ties, as usual for neighbourhood methods. The tuned baselines pick their hyperparameters on the
validation split by Recall@10 averaged over both protocols; the choice is returned beside the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from training.data import TrainingData, dialogue_items, target_counts
from training.metrics import PROTOCOLS, evaluate_protocols
from training.modalities import cooccurrence_graphs, text_baseline_modalities
from training.samples import Sample

log = logging.getLogger(__name__)

EASE_LAMBDAS = (1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0)
EASE_MAX_ITEMS = 20_000
KNN_SHRINKAGES = (0.0, 10.0, 50.0)
KNN_NEIGHBOURS: tuple[int | None, ...] = (20, 100, None)


def popularity(data: TrainingData) -> torch.Tensor:
    """(I,) how often each item is a target in the training split."""
    return target_counts(data)


def comention_matrix(data: TrainingData) -> torch.Tensor:
    """(I, I) co-mention weights: the first co-occurrence count graph (``GraphSpec.cooccurrence``) of the run,
    else counted from the training dialogues."""
    n = len(data.item_ids)
    name = next((g for g in cooccurrence_graphs() if g in data.graphs), None)
    if name is not None:
        g = data.graphs[name]
        return torch.sparse_coo_tensor(g.edge_index, g.edge_weight, (n, n), check_invariants=False).to_dense()
    return gram_matrix(data).fill_diagonal_(0).float()


def gram_matrix(data: TrainingData) -> torch.Tensor:
    """(I, I) float64 ``X^T X`` of the training dialogues x items binary matrix ``X``: co-mention counts off
    the diagonal, each item's dialogue count on it."""
    n = len(data.item_ids)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    for positions in dialogue_items(data.samples["train"], data.index).values():
        pos = torch.tensor(sorted(positions), dtype=torch.long)
        matrix[pos.unsqueeze(1), pos.unsqueeze(0)] += 1
    return matrix


def ease_weights(gram: torch.Tensor, l2: float) -> torch.Tensor:
    """(I, I) EASE item-item weights (Steck 2019): ``B = I - P / diag(P)`` with ``P = (G + l2 I)^-1``, so
    ``B[i, j] = -P[i, j] / P[j, j]`` and ``diag(B) = 0``. Computed in float64 on ``gram``'s device, over the
    items with a dialogue (non-zero diagonal) only: an item without one has a zero row and column in ``G``, so
    ``P`` is block diagonal and its weights are exactly 0 (a full catalog's inverse is then much smaller)."""
    active = torch.nonzero(torch.diagonal(gram) > 0).squeeze(1)
    sub = gram.double()[active][:, active]
    eye = torch.eye(len(active), dtype=torch.float64, device=gram.device)
    precision = torch.linalg.inv(sub + l2 * eye)
    weights = torch.zeros(gram.shape, dtype=torch.float64, device=gram.device)
    weights[active.unsqueeze(1), active.unsqueeze(0)] = -precision / torch.diagonal(precision).unsqueeze(0)
    return weights.fill_diagonal_(0)


def cosine_knn(gram: torch.Tensor, *, shrinkage: float, neighbours: int | None) -> torch.Tensor:
    """(I, I) shrunk cosine item similarity ``C[i, j] / (sqrt(n_i n_j) + shrinkage)`` from a Gram matrix
    (co-mention counts ``C`` off the diagonal, dialogue counts ``n`` on it), keeping each row's ``neighbours``
    largest entries (all with None); the diagonal is 0."""
    counts = torch.diagonal(gram).clamp_min(0)
    norms = counts.sqrt()
    sim = gram / (norms.unsqueeze(1) * norms.unsqueeze(0) + shrinkage).clamp_min(1e-12)
    sim = sim.fill_diagonal_(0).float()
    if neighbours is not None and neighbours < sim.shape[1]:
        top = sim.topk(neighbours, dim=1).indices
        sim = torch.zeros_like(sim).scatter_(1, top, sim.gather(1, top))
    return sim


def _context_positions(samples: Sequence[Sample], index: dict[str, int]) -> list[list[int]]:
    return [[index[i] for i in s.context_items if i in index] for s in samples]


def neighbour_scores(similarity: torch.Tensor, contexts: list[list[int]], tiebreak: torch.Tensor) -> torch.Tensor:
    """(N, I): sum of ``similarity[context item, item]`` over each sample's context items, plus ``tiebreak``."""
    out = tiebreak.expand(len(contexts), -1).clone()
    for row, ctx in enumerate(contexts):
        if ctx:
            out[row] += similarity[torch.tensor(ctx)].sum(0)
    return out


@dataclass(frozen=True)
class SplitScorer:
    """One split's samples as target and context positions, with the popularity tie-break: scores item-item
    similarity matrices under both protocols."""

    targets: torch.Tensor
    contexts: list[list[int]]
    tiebreak: torch.Tensor

    @classmethod
    def of(cls, data: TrainingData, split: str) -> SplitScorer:
        """The samples of ``split`` whose target is a ranked item."""
        samples = [s for s in data.samples[split] if s.target in data.index]
        targets = torch.tensor([data.index[s.target] for s in samples], dtype=torch.long)
        return cls(targets, _context_positions(samples, data.index), popularity(data) * 1e-6)

    def evaluate(self, similarity: torch.Tensor) -> dict[str, dict[str, float]]:
        """Both protocols' metrics of the sum of ``similarity``'s context-item rows (``neighbour_scores``)."""
        return evaluate_protocols(
            neighbour_scores(similarity, self.contexts, self.tiebreak), self.targets, self.contexts
        )

    def recall10(self, similarity: torch.Tensor) -> float:
        """Recall@10 averaged over both protocols: what the tuned baselines maximise."""
        metrics = self.evaluate(similarity)
        return sum(metrics[p]["recall@10"] for p in PROTOCOLS) / len(PROTOCOLS)


def grid_search(
    grid: Sequence[dict], build: Callable[..., torch.Tensor], scorer: SplitScorer, *, split: str = "valid"
) -> dict:
    """The grid point (keyword arguments of ``build``, which returns an item-item similarity) with the best
    ``scorer.recall10``, first one on ties, plus that score under ``"<split>_recall@10"``."""
    best: dict = {}
    for params in grid:
        score = scorer.recall10(build(**params))
        if not best or score > best[f"{split}_recall@10"]:
            best = params | {f"{split}_recall@10": score}
    return best


def ease_skip_reason(n_items: int) -> str | None:
    """Why EASE is not fitted on a catalog of ``n_items`` items (its dense I x I inverse), None when it is."""
    if n_items > EASE_MAX_ITEMS:
        return f"{n_items} items > {EASE_MAX_ITEMS}: the dense item x item inverse is too large"
    return None


def _ease(gram: torch.Tensor, l2: float) -> torch.Tensor:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return ease_weights(gram.to(device), l2).float().cpu()


def _tune(data: TrainingData, gram: torch.Tensor, split: str) -> dict[str, dict]:
    scorer = SplitScorer.of(data, split)
    knn_grid = [{"shrinkage": s, "neighbours": k} for s in KNN_SHRINKAGES for k in KNN_NEIGHBOURS]
    params = {"itemknn_tuned": grid_search(knn_grid, partial(cosine_knn, gram), scorer, split=split)}
    if ease_skip_reason(gram.shape[0]) is None:
        ease_grid = [{"l2": value} for value in EASE_LAMBDAS]
        params["ease"] = grid_search(ease_grid, partial(_ease, gram), scorer, split=split)
    log.info("baselines tuned on %s (%d samples): %s", split, len(scorer.targets), params)
    return params


def tune_baselines(data: TrainingData, split: str = "valid") -> dict[str, dict]:
    """Hyperparameters of the tuned baselines chosen on ``split`` by Recall@10 averaged over both protocols
    (the first grid point wins ties, so an empty split keeps the first): ``{"itemknn_tuned": {"shrinkage",
    "neighbours", "<split>_recall@10"}, "ease": {"l2", "<split>_recall@10"}}``. ``neighbours`` None keeps
    every neighbour; EASE is left out when ``ease_skip_reason`` gives a reason."""
    return _tune(data, gram_matrix(data), split)


def evaluate_baselines(
    data: TrainingData, split: str = "test", *, params: dict[str, dict] | None = None
) -> tuple[dict[str, dict], dict[str, str]]:
    """Metrics of every baseline on ``split`` (both protocols), and the reasons of those skipped.

    ``params`` (``tune_baselines``'s result) fixes the tuned baselines' hyperparameters; without it they are
    tuned on the validation split here."""
    scorer = SplitScorer.of(data, split)
    gram = gram_matrix(data)
    params = _tune(data, gram, "valid") if params is None else params
    results = {
        "popularity": evaluate_protocols(
            popularity(data).expand(len(scorer.targets), -1), scorer.targets, scorer.contexts
        )
    }
    results["comention_knn"] = scorer.evaluate(comention_matrix(data))
    knn = params["itemknn_tuned"]
    results["itemknn_tuned"] = scorer.evaluate(
        cosine_knn(gram, shrinkage=knn["shrinkage"], neighbours=knn["neighbours"])
    )
    skipped: dict[str, str] = {}
    if "ease" in params:
        results["ease"] = scorer.evaluate(_ease(gram, params["ease"]["l2"]))
    else:
        skipped["ease"] = ease_skip_reason(len(data.item_ids)) or "no EASE l2 in params"
    candidates = text_baseline_modalities()
    modality = next((m for m in candidates if m in data.features), None)
    if modality is None:
        skipped["text_similarity"] = f"no {'/'.join(candidates)} vectors in item_embeddings"
    else:
        vectors = F.normalize(data.features[modality], dim=-1)
        results["text_similarity"] = scorer.evaluate(vectors @ vectors.T)
    return results, skipped
