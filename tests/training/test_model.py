"""Model pieces: LightGCN normalisation, skipped views, gating off, frozen LM."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch

import features
from training.data import DataOptions, load_training_data
from training.lm import load_lm
from training.model import ModelConfig, normalized_adjacency
from training.spec import random_lm
from training.train import build_model, make_batch

from .conftest import write_fixture_lake


def test_normalized_adjacency_is_symmetric_without_self_loops() -> None:
    index, value = normalized_adjacency(torch.tensor([[0, 0, 1, 2], [1, 2, 1, 0]]), 3)
    dense = torch.sparse_coo_tensor(index, value, (3, 3), check_invariants=False).to_dense()
    assert torch.allclose(dense, dense.T) and torch.all(dense.diagonal() == 0)
    # degrees: 0 -> {1, 2} = 2, 1 -> {0} = 1, 2 -> {0} = 1
    assert dense[0, 1] == pytest.approx(1 / (2**0.5 * 1))


def test_absent_graphs_and_modalities_are_skipped_with_reasons(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    write_fixture_lake(lake)
    data = load_training_data(
        DataOptions(graphs=("co_mention", "image_knn"), modalities=("text", "image"), use_summaries=False), lake=lake
    )
    assert list(data.graphs) == ["co_mention"] and list(data.features) == ["text"]
    assert "no edges" in data.skipped["graph:image_knn"] and "no vectors" in data.skipped["feat:image"]
    assert data.skipped["summaries"] == "disabled by config"


@pytest.mark.parametrize("gating", [True, False])
def test_scores_every_item_and_only_non_lm_parameters_train(tmp_path: Path, gating: bool) -> None:
    from training.train import TrainConfig, summary_vectors

    lake = str(tmp_path / "lake")
    write_fixture_lake(lake)
    data = load_training_data(DataOptions(), lake=lake)
    lm = load_lm(random_lm())
    model = build_model(data, TrainConfig(model=ModelConfig(gating=gating, id_dim=8)), lm)
    batch = make_batch(data.samples["train"][:4], model=model, index=data.index, summaries=summary_vectors(lm, data))
    scores, gate = model(batch)
    assert scores.shape == (4, len(data.item_ids)) and gate.shape == (4, 3)  # id, co_mention, text
    assert torch.allclose(gate.sum(1), torch.ones(4))
    if not gating:
        assert torch.allclose(gate, torch.full_like(gate, 1 / 3))
    loss, _ = model.loss(batch)
    loss.backward()
    assert all(p.grad is None for p in model.lm.parameters())
    assert model.item_emb.weight.grad is not None and model.prompt_mlp.weight.grad is not None


def test_dialogue_graphs_are_counted_from_training_dialogues_only(tmp_path: Path) -> None:
    from training.turn_graphs import co_mention_edges

    lake = str(tmp_path / "lake")
    write_fixture_lake(lake)
    data = load_training_data(DataOptions(graphs=("co_mention",), use_summaries=False), lake=lake)
    turns = features.read("turns", lake=lake).collect()
    train = turns.filter(pl.col("dialogue_id").is_in(list(data.split.of("train"))))
    expected = co_mention_edges(train)
    graph = data.graphs["co_mention"]
    pairs = {(graph.item_ids[s], graph.item_ids[d]) for s, d in graph.edge_index.T.tolist()}
    assert pairs == set(zip(expected["src"], expected["dst"], strict=True))
    assert float(graph.edge_weight.sum()) == pytest.approx(float(expected["weight"].sum()))
    everything = co_mention_edges(turns)  # what the lake-wide graph counts: valid and test dialogues too
    assert float(everything["weight"].sum()) > float(expected["weight"].sum())
