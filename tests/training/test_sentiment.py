"""The sentiment head: it trains on observed labels, it changes scores only through the labels it predicts
(and only where labels are not observed), recommend() runs it, and models saved without it load without it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from training.data import DataOptions, load_training_data
from training.lm import load_lm
from training.loading import load_artifact
from training.model import Batch, GraphPromptRecommender, ModelConfig
from training.pipeline import train_and_register
from training.samples import mention_lines, without_labels
from training.spec import random_lm
from training.train import MENTION_TOKENS, fit, make_batch

from .conftest import TINY_CONFIG, write_fixture_lake

LEGACY_ARTIFACT = Path(__file__).parent / "data" / "legacy_artifact"


HEAD_CONFIG = TINY_CONFIG.model_copy(update={"model": dataclasses.replace(TINY_CONFIG.model, sentiment_head=True)})


def _model(**overrides: object) -> GraphPromptRecommender:
    torch.manual_seed(0)
    config = ModelConfig(n_items=5, id_dim=4, max_context_items=2, **({"sentiment_head": True} | overrides))
    return GraphPromptRecommender(config, load_lm(random_lm())).eval()


def _batch(model: GraphPromptRecommender, *, labels: list[list[int]], observed: bool) -> Batch:
    lm, b = model.lm, len(labels)
    states = lm.encode_memo(["seeker: I loved it", "seeker: hated that one"] * b, max_tokens=MENTION_TOKENS)
    return Batch(
        torch.zeros(b, 2, dtype=torch.long),
        torch.ones(b, 2, dtype=torch.long),
        torch.tensor([[0, 3]] * b),
        torch.ones(b, 2, dtype=torch.bool),
        torch.tensor(labels),
        torch.zeros(b, lm.hidden_size),
        torch.zeros(b, dtype=torch.bool),
        torch.full((b,), 1),
        mention_states=states.view(b, 2, -1),
        labels_observed=torch.full((b,), observed),
    )


def _force(model: GraphPromptRecommender, label: int) -> None:
    """Make the head predict ``label`` with (numerical) certainty whatever the text."""
    with torch.no_grad():
        model.sentiment.weight.zero_()
        model.sentiment.bias.copy_(torch.full((3,), -50.0))
        model.sentiment.bias[label] = 50.0


def test_mention_lines_are_the_latest_turn_naming_each_item() -> None:
    messages = [{"role": "seeker", "text": "I loved @a"}, {"role": "recommender", "content": "@b? or @a again"}]
    assert mention_lines(messages, ("a", "b", "c"), titles={"a": "Heat"}) == (
        "recommender: @b? or Heat again",
        "recommender: @b? or Heat again",
        "",
    )


def test_samples_carry_the_mention_text_of_each_context_item(tmp_path: Path) -> None:
    write_fixture_lake(str(tmp_path / "lake"))
    data = load_training_data(DataOptions(seed=0), lake=str(tmp_path / "lake"))
    sample = next(s for s in data.samples["train"] if len(s.context_items) == 3)
    assert sample.context_mentions[0].startswith("seeker: hi, I loved Movie")
    assert len(sample.context_mentions) == len(sample.context_items) and sample.labels_observed
    assert not without_labels([sample])[0].labels_observed


def test_head_changes_scores_only_through_the_labels_it_predicts() -> None:
    model = _model()
    _force(model, 1)  # predicts "liked" for every context item
    serving, _ = model(_batch(model, labels=[[0, 0]], observed=False))
    liked, _ = model(_batch(model, labels=[[1, 1]], observed=True))
    assert torch.allclose(serving, liked, atol=1e-5)
    _force(model, 2)
    disliked, _ = model(_batch(model, labels=[[2, 2]], observed=True))
    assert torch.allclose(model(_batch(model, labels=[[0, 0]], observed=False))[0], disliked, atol=1e-5)
    assert not torch.allclose(liked, disliked)


def test_observed_labels_are_used_as_they_are() -> None:
    with_head, without = _model(), _model(sentiment_head=False)
    without.load_state_dict({k: v for k, v in with_head.state_dict().items() if not k.startswith("sentiment")})
    _force(with_head, 2)
    batch = _batch(with_head, labels=[[1, 0]], observed=True)
    assert torch.allclose(with_head(batch)[0], without(batch)[0])
    assert not torch.allclose(with_head(_batch(with_head, labels=[[1, 0]], observed=False))[0], without(batch)[0])


def test_head_trains_on_observed_labels() -> None:
    model = _model().train()
    batch = _batch(model, labels=[[1, 2]] * 4, observed=True)
    optimizer = torch.optim.Adam(model.sentiment.parameters(), lr=0.05)
    first = float(model.sentiment_loss(batch).detach())
    for _ in range(30):
        optimizer.zero_grad()
        model.sentiment_loss(batch).backward()
        optimizer.step()
    assert float(model.sentiment_loss(batch).detach()) < first / 2
    assert float(model.sentiment_loss(_batch(model, labels=[[1, 2]], observed=False))) == 0.0


def test_fit_reports_the_heads_accuracy_and_recommend_uses_it(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    write_fixture_lake(lake)
    data = load_training_data(DataOptions(seed=0), lake=lake)
    result = fit(data, HEAD_CONFIG.model_copy(update={"epochs": 1}))
    accuracy = result.metrics["test_sentiment"]["labels"]
    assert 0.0 <= accuracy["accuracy"] <= 1.0 and accuracy["n"] > 0 and "majority" in accuracy
    report = train_and_register(HEAD_CONFIG.model_copy(update={"epochs": 1}), lake=lake)
    rec = load_artifact(report.artifact_dir)
    assert rec.model.config.sentiment_head
    messages = [{"role": "seeker", "content": "I loved @m0 and @m4"}]
    top = rec.recommend(messages, k=5)
    assert len(top) == 5 and all(item not in ("m0", "m4") for item, _ in top)


def test_models_saved_without_a_head_load_without_one() -> None:
    saved = json.loads((LEGACY_ARTIFACT / "config.json").read_text())["model"]
    assert "sentiment_head" not in saved
    rec = load_artifact(LEGACY_ARTIFACT)
    assert not rec.model.config.sentiment_head and not hasattr(rec.model, "sentiment")
    assert rec.recommend([{"role": "seeker", "text": "hello"}], k=3)


@pytest.mark.parametrize("observed", [True, False])
def test_batches_carry_mention_states_only_with_a_head(observed: bool) -> None:
    from training.samples import Sample

    sample = Sample("d", 1, "x", "seeker: hi", ("a",), (True,), None, False, ("seeker: I loved A",), observed)
    for head in (True, False):
        model = _model(sentiment_head=head)
        batch = make_batch([sample], model=model, index={"a": 0, "x": 1}, summaries={})
        assert (batch.mention_states is not None) == head
        if head:
            assert batch.labels_observed is not None and bool(batch.labels_observed[0]) == observed
