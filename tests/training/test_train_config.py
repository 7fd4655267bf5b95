"""TrainConfig: the nested form, the flat form of older configs and exports, and unknown keys refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.model import ModelConfig
from training.spec import MINILM, ModelSpec, random_lm
from training.train import TrainConfig

LEGACY_TRAIN = json.loads((Path(__file__).parent / "data" / "legacy_artifact" / "config.json").read_text())["train"]


def test_the_flat_form_of_an_older_export_reads_as_the_nested_config() -> None:
    config = TrainConfig.from_dict(LEGACY_TRAIN)
    assert config.model == ModelConfig(id_dim=16, max_context_tokens=32, use_summary=True)
    assert config.lm == random_lm(hidden=32, seed=0) and config.lm_layers is None
    assert (config.epochs, config.batch_size, config.lr, config.progress) == (1, 16, 1e-2, False)
    assert TrainConfig.from_dict(config.model_dump(mode="json")) == config


def test_flat_keys_map_onto_the_model_and_the_lm() -> None:
    flat = TrainConfig.from_dict({"id_dim": 8, "use_summaries": False, "seed": 5, "lm_kind": "random", "lm_hidden": 16})
    assert flat.model == ModelConfig(id_dim=8, use_summary=False)
    assert flat.lm == random_lm(hidden=16, seed=5)  # a random LM took the run's seed
    assert TrainConfig.from_dict({"lm_kind": "local", "lm_path": "/models/lm"}).lm == ModelSpec("local", "/models/lm")
    assert TrainConfig.from_dict({"lm_kind": "package"}).lm == MINILM == TrainConfig().lm
    assert TrainConfig(id_dim=8, lm_kind="random") == TrainConfig.from_dict({"id_dim": 8, "lm_kind": "random"})


def test_nested_and_flat_forms_mix() -> None:
    mixed = TrainConfig.from_dict({"model": {"id_dim": 8}, "gating": False, "lm": "random:bert-h32-l1-a2@3"})
    assert mixed.model == ModelConfig(id_dim=8, gating=False) and mixed.lm == random_lm(seed=3)
    dumped = mixed.model_dump(mode="json")
    assert dumped["lm"] == "random:bert-h32-l1-a2@3" and dumped["model"]["gating"] is False
    assert not {"gating", "id_dim", "lm_kind", "use_summaries"} & set(dumped)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"epochs": 1, "dim": 3, "lm_knd": "random"}, r"unknown train config keys: \['dim', 'lm_knd'\]"),
        ({"model": {"id_dim": 8, "n_items": 3}}, r"unknown train config model keys: \['n_items'\]"),
        ({"model": {"id_dim": 8}, "id_dim": 16}, r"given twice.*\['id_dim'\]"),
        ({"lm": "random:bert-h32-l1-a2@0", "lm_kind": "package"}, "not both"),
        ({"lm_kind": "remote"}, "unknown lm_kind"),
        ({"lm": "bert"}, "KIND:TARGET"),
    ],
)
def test_bad_configs_are_refused_naming_the_problem(mapping: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(mapping)
