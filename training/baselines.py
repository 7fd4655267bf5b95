"""Baselines scored on the same split and protocols as the model: popularity, co-mention item-kNN, text similarity.

Each baseline turns samples into an (N, I) score matrix; ``evaluate_baselines`` runs them through
``training.metrics.evaluate_protocols``. Popularity (train-split mention counts, x 1e-6) breaks the kNN
baselines' ties, as usual for neighbourhood methods.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from training.data import TrainingData, dialogue_items, target_counts
from training.metrics import evaluate_protocols
from training.modalities import cooccurrence_graphs, text_baseline_modalities
from training.samples import Sample


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
    matrix = torch.zeros(n, n)
    for positions in dialogue_items(data.samples["train"], data.index).values():
        pos = torch.tensor(sorted(positions), dtype=torch.long)
        matrix[pos.unsqueeze(1), pos.unsqueeze(0)] += 1
    matrix.fill_diagonal_(0)
    return matrix


def _context_positions(samples: Sequence[Sample], index: dict[str, int]) -> list[list[int]]:
    return [[index[i] for i in s.context_items if i in index] for s in samples]


def neighbour_scores(similarity: torch.Tensor, contexts: list[list[int]], tiebreak: torch.Tensor) -> torch.Tensor:
    """(N, I): sum of ``similarity[context item, item]`` over each sample's context items, plus ``tiebreak``."""
    out = tiebreak.expand(len(contexts), -1).clone()
    for row, ctx in enumerate(contexts):
        if ctx:
            out[row] += similarity[torch.tensor(ctx)].sum(0)
    return out


def evaluate_baselines(data: TrainingData, split: str = "test") -> tuple[dict[str, dict], dict[str, str]]:
    """Metrics of every baseline on ``split`` (both protocols), and the reasons of those skipped."""
    index = data.index
    samples = [s for s in data.samples[split] if s.target in index]
    targets = torch.tensor([index[s.target] for s in samples], dtype=torch.long)
    contexts = _context_positions(samples, index)
    pop = popularity(data)
    results = {"popularity": evaluate_protocols(pop.expand(len(samples), -1), targets, contexts)}
    results["comention_knn"] = evaluate_protocols(
        neighbour_scores(comention_matrix(data), contexts, pop * 1e-6), targets, contexts
    )
    skipped: dict[str, str] = {}
    candidates = text_baseline_modalities()
    modality = next((m for m in candidates if m in data.features), None)
    if modality is None:
        skipped["text_similarity"] = f"no {'/'.join(candidates)} vectors in item_embeddings"
    else:
        vectors = F.normalize(data.features[modality], dim=-1)
        results["text_similarity"] = evaluate_protocols(
            neighbour_scores(vectors @ vectors.T, contexts, pop * 1e-6), targets, contexts
        )
    return results, skipped
