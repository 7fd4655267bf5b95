"""The no-repeats signals: raw co-occurrence signal, leave-own-dialogue-out, repeat score, explore loss,
logit-scale calibration, and the checkpoint-selection metric."""

from __future__ import annotations

import pytest
import torch

from training.baselines import neighbour_scores
from training.data import dialogue_items
from training.lm import load_lm
from training.model import Batch, GraphPromptRecommender, ModelConfig
from training.samples import Sample
from training.spec import random_lm
from training.train import SCALES, TrainConfig, _cooc_offset, selection_score

# 5 items; co_mention counts: 0-1 in 3 dialogues, 0-2 in 1, 3-4 in 2 (item 3 and 4 unrelated to 0)
EDGES = torch.tensor([[0, 1, 0, 2, 3, 4], [1, 0, 2, 0, 4, 3]])
WEIGHTS = torch.tensor([3.0, 3.0, 1.0, 1.0, 2.0, 2.0])


def _model(**overrides: object) -> GraphPromptRecommender:
    config = ModelConfig(n_items=5, graphs=("co_mention",), id_dim=4, **overrides)
    model = GraphPromptRecommender(config, load_lm(random_lm()))
    model.set_graph("co_mention", EDGES, WEIGHTS)
    return model


def _batch(ctx: list[list[int]], labels: list[list[int]] | None = None, targets: list[int] | None = None) -> Batch:
    items = torch.tensor(ctx)
    b = items.shape[0]
    return Batch(
        torch.zeros(b, 2, dtype=torch.long),
        torch.ones(b, 2, dtype=torch.long),
        items,
        torch.ones_like(items, dtype=torch.bool),
        torch.tensor(labels) if labels is not None else torch.zeros_like(items),
        torch.zeros(b, 32),
        torch.zeros(b, dtype=torch.bool),
        torch.tensor(targets) if targets is not None else torch.full((b,), -1),
    )


def test_cooccurrence_is_log1p_of_the_comention_knn_score() -> None:
    model = _model()
    out = model.cooccurrence(torch.tensor([[0], [1]]), torch.tensor([[True], [True]]))  # (1, 2, 5)
    dense = torch.sparse_coo_tensor(EDGES, WEIGHTS, (5, 5)).to_dense()
    knn = neighbour_scores(dense, [[0], [1]], torch.zeros(5))
    assert torch.allclose(out[0], torch.log1p(knn))
    assert out[0, 0, 1] > out[0, 0, 2] > out[0, 0, 3] == 0  # co-mentioned above less co-mentioned above unrelated


def test_initial_model_ranks_a_comentioned_item_above_an_unrelated_one() -> None:
    torch.manual_seed(0)
    model = _model().eval()
    scores, _ = model(_batch([[0]]))
    assert scores[0, 1] > scores[0, 3] and scores[0, 1] > scores[0, 4]


def test_own_dialogue_counts_are_left_out_for_training_samples() -> None:
    model = _model()
    # dialogue "d" mentioned items 0, 1 and 2: it gave co_mention one count for 0-1 and one for 0-2
    samples = [
        Sample("d", 1, "1", "", ("0",), (None,), None, False),
        Sample("d", 2, "2", "", ("0", "1"), (None, None), None, False),
    ]
    index = {str(i): i for i in range(5)}
    own = dialogue_items(samples, index)
    assert own == {"d": frozenset({0, 1, 2})}
    items, mask = torch.tensor([[0, 0]]), torch.tensor([[True, False]])
    offset = _cooc_offset(samples[:1], items, mask, 5, own)
    assert offset.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0]]
    left_out = model.cooccurrence(items, mask, offset)[0, 0]
    assert torch.allclose(left_out, torch.log1p(torch.tensor([0.0, 2.0, 0.0, 0.0, 0.0])))


def test_repeat_score_lands_on_context_items_by_label() -> None:
    model = _model(repeat_init=0.0)
    with torch.no_grad():
        model.repeat_weight.copy_(torch.tensor([1.0, 2.0, -3.0]))
    out = model.repeat_scores(_batch([[0, 3], [4, 4]], labels=[[1, 2], [0, 0]]))
    assert out.tolist() == [[2.0, 0.0, 0.0, -3.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]


def test_explore_loss_masks_context_items_and_skips_repeats() -> None:
    batch = _batch([[0, 1], [2, 3]], targets=[4, 2])  # sample 0 explores, sample 1 repeats item 2
    scores = torch.randn(2, 5)
    loss = GraphPromptRecommender.explore_loss(scores, batch)
    expected = torch.nn.functional.cross_entropy(scores[:1, 2:], torch.tensor([2]))
    assert torch.allclose(loss, expected)
    louder = scores.clone()
    louder[0, :2] += 100.0  # the context items' scores do not matter
    louder[1] += 5.0  # nor does the repeat sample
    assert torch.allclose(GraphPromptRecommender.explore_loss(louder, batch), loss)
    assert GraphPromptRecommender.explore_loss(scores[1:], _batch([[2, 3]], targets=[2])) == 0


def test_older_configs_load_without_the_new_signals() -> None:
    config = ModelConfig.from_dict({"n_items": 3, "graphs": ["co_mention"]})
    assert not config.cooccurrence and not config.repeat_score
    model = GraphPromptRecommender(config, load_lm(random_lm()))
    assert model.cooccurrence_graphs == () and not hasattr(model, "logit_scale")


@pytest.mark.parametrize(
    ("select_on", "select_metrics", "expected"),
    [
        ("standard", ("recall@10",), 0.2),
        ("no_repeats", ("recall@10",), 0.1),
        ("both", ("recall@10",), 0.15),
        ("both", ("recall@10", "recall@50"), 0.5),
        ("no_repeats", ("recall@50",), 0.8),
    ],
)
def test_selection_metric_is_what_the_config_names(
    select_on: str, select_metrics: tuple[str, ...], expected: float
) -> None:
    metrics = {"standard": {"recall@10": 0.2, "recall@50": 0.9}, "no_repeats": {"recall@10": 0.1, "recall@50": 0.8}}
    assert selection_score(metrics, select_on, select_metrics) == pytest.approx(expected)  # type: ignore[arg-type]
    assert TrainConfig().select_on == "both" and TrainConfig().select_metrics == ("recall@10", "recall@50")


def test_logit_scales_cover_sharpening_and_flattening() -> None:
    assert min(SCALES) < 1.0 < max(SCALES) and 1.0 in SCALES
