"""Model pieces: cached lower LM layers, the context-items graph pathway, item bias, text init, configs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.data import DataOptions, TrainingData, load_training_data, target_counts
from training.lm import load_lm
from training.model import ModelConfig
from training.spec import random_lm
from training.train import (
    TrainConfig,
    build_model,
    make_batch,
    param_groups,
    summary_vectors,
)


@pytest.fixture
def data(fixture_lake: str) -> TrainingData:
    return load_training_data(DataOptions(), lake=fixture_lake)


def _two_layer_lm() -> object:
    return load_lm(random_lm(hidden=32, layers=2))


def test_train_config_takes_its_model_defaults_from_model_config() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    config = TrainConfig()
    assert all(getattr(config.model, name) == defaults[name] for name in ModelConfig.knob_names())
    assert config.model == ModelConfig() and config.model.use_summary == defaults["use_summary"]


def test_cached_lower_layers_plus_upper_layers_equal_the_full_lm() -> None:
    lm = _two_layer_lm()
    texts = ["seeker: hi, I loved Movie 3", "recommender: then try Movie 7, it is great"]
    tok = lm.tokenize(texts, max_tokens=32)
    full = lm(lm.embed_tokens(tok["input_ids"]), tok["attention_mask"])
    cached = lm.lower_states(texts, max_tokens=32, split=1)
    assert [len(ids) for ids, _ in cached] == tok["attention_mask"].sum(1).tolist()
    states = torch.nn.utils.rnn.pad_sequence([h.float() for _, h in cached], batch_first=True)
    upper = lm.forward_upper(states, tok["attention_mask"], 1)
    assert torch.allclose(full, upper, atol=1e-2)  # the cache is stored in float16
    assert lm.lower_states(texts[:1], max_tokens=32, split=1)[0][1] is cached[0][1]  # memoised


def test_prompt_depth_model_scores_all_items_and_trains_only_its_own_parts(data: TrainingData) -> None:
    lm = _two_layer_lm()
    model = build_model(data, TrainConfig(model=ModelConfig(id_dim=8, prompt_depth=1)), lm)
    assert model.split == 1
    batch = make_batch(data.samples["train"][:4], model=model, index=data.index, summaries=summary_vectors(lm, data))
    assert batch.word_states is not None and batch.word_states.shape[:2] == batch.input_ids.shape
    scores, _ = model(batch)
    assert scores.shape == (4, len(data.item_ids))
    loss, _ = model.loss(batch)
    loss.backward()
    assert all(p.grad is None for p in model.lm.parameters())
    for name in (
        "item_emb.weight",
        "bias",
        "path_scale",
        "path_gate.weight",
        "prompt_mlp.weight",
        "query.weight",
        "diffusion_weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_graph_pathway_is_off_for_samples_without_context_items(data: TrainingData) -> None:
    lm = load_lm(random_lm())
    torch.manual_seed(0)
    model = build_model(data, TrainConfig(model=ModelConfig(id_dim=8)), lm).eval()
    batch = make_batch(data.samples["train"][:4], model=model, index=data.index, summaries={})
    batch.ctx_mask[:] = False
    with_path, _ = model(batch)
    plain = build_model(data, TrainConfig(model=ModelConfig(id_dim=8, graph_pathway=False)), lm).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    without, _ = plain(batch)
    assert torch.allclose(with_path, without, atol=1e-5)
    batch.ctx_mask[:, 0] = True  # with a context item the pathway changes the scores
    assert not torch.allclose(model(batch)[0], plain(batch)[0], atol=1e-3)


def test_scores_are_deterministic_on_cpu(data: TrainingData) -> None:
    lm = _two_layer_lm()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_model(data, TrainConfig(model=ModelConfig(id_dim=8, prompt_depth=1)), lm).eval()
        batch = make_batch(data.samples["valid"][:5], model=model, index=data.index, summaries={})
        runs.append(model(batch)[0])
    assert torch.equal(runs[0], runs[1])


def test_id_embeddings_start_from_text_vectors_and_bias_from_training_counts(data: TrainingData) -> None:
    lm = load_lm(random_lm())
    model = build_model(data, TrainConfig(model=ModelConfig(id_dim=8)), lm)
    emb = model.item_emb.weight.detach()
    # fixture text vectors are one-hot clusters (item i in cluster i % 4): same cluster, same start
    assert torch.allclose(emb[0], emb[4]) and not torch.allclose(emb[0], emb[1])
    assert torch.allclose(model.bias.detach(), torch.log1p(target_counts(data)))
    random_init = build_model(data, TrainConfig(model=ModelConfig(id_dim=8), init_from=None), lm)
    assert not torch.allclose(random_init.item_emb.weight[0], random_init.item_emb.weight[4])


def test_item_parameters_get_their_own_learning_rate(data: TrainingData) -> None:
    lm = load_lm(random_lm())
    config = TrainConfig(model=ModelConfig(id_dim=8), lr=1e-3, item_lr_mult=5.0)
    model = build_model(data, config, lm)
    groups = param_groups(model, config)
    item_group = next(g for g in groups if any(p is model.item_emb.weight for p in g["params"]))
    assert item_group["lr"] == pytest.approx(5e-3) and any(p is model.bias for p in item_group["params"])
    other = next(g for g in groups if g is not item_group)
    assert other["lr"] == pytest.approx(1e-3) and not any(p is model.item_emb.weight for p in other["params"])
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)


def test_diffusion_propagates_context_items_over_each_graph() -> None:
    from training.model import GraphPromptRecommender, normalized_adjacency

    lm = load_lm(random_lm())
    model = GraphPromptRecommender(ModelConfig(n_items=4, graphs=("g",), id_dim=4, layers=2), lm)
    model.set_graph("g", torch.tensor([[0, 1], [1, 2]]))  # path 0 - 1 - 2, item 3 isolated
    ctx_items, ctx_mask = torch.tensor([[0, 0], [0, 0]]), torch.tensor([[True, False], [False, False]])
    out = model.diffusion(ctx_items, ctx_mask)
    index, value = normalized_adjacency(torch.tensor([[0, 1], [1, 2]]), 4)
    adj = torch.sparse_coo_tensor(index, value, (4, 4)).to_dense()
    one_hot = torch.tensor([1.0, 0.0, 0.0, 0.0])
    expected = adj @ one_hot + adj @ (adj @ one_hot)
    assert out.shape == (1, 2, 4)
    assert torch.allclose(out[0, 0], expected / expected.max())
    assert out[0, 0, 3] == 0 and out[0, 0, 1] == 1  # isolated item unreached; the neighbour scores highest
    assert torch.all(out[0, 1] == 0)  # no context items: nothing
