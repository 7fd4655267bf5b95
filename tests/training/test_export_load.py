"""One tiny end-to-end run: manifest completeness, reload + recommend, reproduction from the manifest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import training
from training.export import sha256_file
from training.loading import ArtifactError, load_artifact
from training.pipeline import RunReport, retrain_from_manifest, train_and_register
from training.train import TrainConfig

from .conftest import TINY_CONFIG, write_fixture_lake

CONFIG = TINY_CONFIG.model_copy(
    update={"epochs": 2, "patience": 3, "model": dataclasses.replace(TINY_CONFIG.model, sentiment_head=True)}
)
LEGACY_ARTIFACT = Path(__file__).parent / "data" / "legacy_artifact"  # exported with the flat train config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, RunReport]:
    root = tmp_path_factory.mktemp("e2e")
    lake = str(root / "lake")
    write_fixture_lake(lake)
    return lake, train_and_register(CONFIG, lake=lake, artifacts_root=str(root / "artifacts"))


def test_model_card_carries_its_metrics_table_with_sample_counts_and_protocol(run: tuple[str, RunReport]) -> None:
    _, report = run
    card = (Path(report.artifact_dir) / "MODEL_CARD.md").read_text()
    assert "Evaluation protocol: `full-ranking-serving-time`" in card
    rows = [line.split("|")[1:-1] for line in card.splitlines() if line.startswith("| model")]
    assert {(r[0].strip(), r[1].strip()) for r in rows} == {
        ("model", "serving-time"),
        ("model (oracle labels)", "oracle labels"),
    }
    for cells in rows:
        protocol, n = cells[2].strip(), int(cells[-1])
        assert n == report.metrics["test"][protocol]["n"] > 0
    assert "Sentiment head" in card and "test accuracy" in card


def test_manifest_lists_every_file_with_matching_sha256(run: tuple[str, RunReport]) -> None:
    _, report = run
    folder = Path(report.artifact_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = {p.name for p in folder.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {
        "model.safetensors",
        "config.json",
        "MODEL_CARD.md",
        "training_curve.png",
        "recall_vs_baselines.png",
    } <= on_disk
    assert all(sha256_file(folder / name) == digest for name, digest in manifest["files"].items())
    assert manifest["inputs"]["tables"] == {
        "turns": 0,
        "items": 0,
        "item_graph_edges": 0,
        "item_embeddings": 0,
        "preference_summaries": 0,
    }
    assert manifest["split"]["seed"] == CONFIG.seed and manifest["config_hash"] and manifest["git_sha"]
    assert manifest["packages"]["torch"] and set(manifest["eval_protocol"]) >= {"standard", "no_repeats"}
    assert set(manifest["metrics"]["model"]["test"]) == {"standard", "no_repeats"}
    splits = {"valid", "test", "valid_oracle_labels", "test_oracle_labels", "valid_sentiment", "test_sentiment"}
    assert set(manifest["metrics"]["model"]) == splits
    assert manifest["eval_protocol"]["eval_labels"] == "serving" and "oracle" in manifest["eval_protocol"]["labels"]
    assert set(manifest["metrics"]["baselines"]) == {
        "popularity",
        "comention_knn",
        "itemknn_tuned",
        "ease",
        "text_similarity",
    }
    assert (folder / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert manifest["lm"] == {"spec": "random:bert-h32-l1-a2@0", "fingerprint": CONFIG.lm.fingerprint()}


def test_config_json_holds_the_nested_train_config(run: tuple[str, RunReport]) -> None:
    _, report = run
    saved = json.loads((Path(report.artifact_dir) / "config.json").read_text())
    assert saved["train"]["model"]["id_dim"] == 16 and "id_dim" not in saved["train"]
    assert "n_items" not in saved["train"]["model"] and saved["model"]["n_items"] > 0
    assert TrainConfig.from_dict(saved["train"]) == CONFIG


def test_first_version_registered_and_promoted(run: tuple[str, RunReport]) -> None:
    _, report = run
    assert report.version == 1 and report.promoted
    assert report.skipped == {}  # the fixture lake has every input this run asked for


def test_reload_by_alias_gives_the_same_scores(run: tuple[str, RunReport]) -> None:
    lake, report = run
    rec = training.load(report.model_name, "production", lake=lake)
    again = load_artifact(report.artifact_dir)
    messages = [{"role": "seeker", "text": "I loved @m1 and @m5"}, {"role": "recommender", "text": "ok"}]
    assert torch.allclose(rec.scores(messages), again.scores(messages))
    top = rec.recommend(messages, k=5)
    assert len(top) == 5 and not {"m1", "m5"} & {item for item, _ in top}
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    unseen = rec.recommend([{"role": "seeker", "text": "something new, no mentions"}], k=3)
    assert len(unseen) == 3


def test_reloaded_model_reproduces_the_test_metrics(run: tuple[str, RunReport]) -> None:
    from training.data import load_training_data
    from training.pipeline import data_options
    from training.train import evaluate_model, summary_vectors

    lake, report = run
    model = load_artifact(report.artifact_dir).model
    data = load_training_data(data_options(CONFIG), lake=lake)
    metrics = evaluate_model(model, data.samples["test"], index=data.index, summaries=summary_vectors(model.lm, data))
    for protocol, expected in report.metrics["test"].items():
        assert metrics[protocol] == pytest.approx(expected)


def test_serving_time_evaluation_ranks_what_recommend_ranks(run: tuple[str, RunReport]) -> None:
    import features
    from training.data import load_training_data
    from training.pipeline import data_options
    from training.samples import without_labels
    from training.train import Scoring, evaluate_model, score_samples, summary_vectors

    lake, report = run
    rec = load_artifact(report.artifact_dir)
    data = load_training_data(data_options(CONFIG), lake=lake)
    summaries = summary_vectors(rec.model.lm, data)
    labelled = [
        s for s in data.samples["test"] if s.target in data.index and any(x is not None for x in s.context_liked)
    ]
    assert labelled and list(rec.item_ids) == list(data.item_ids)
    serving = score_samples(rec.model, without_labels(labelled), Scoring(data.index, summaries))
    oracle = score_samples(rec.model, labelled, Scoring(data.index, summaries))
    turns = features.read("turns", lake=lake).collect().sort("turn_idx")
    for row, sample in enumerate(labelled):
        prefix = turns.filter((turns["dialogue_id"] == sample.dialogue_id) & (turns["turn_idx"] < sample.turn_idx))
        messages = [{"role": role, "content": text} for role, text in prefix.select("role", "text").iter_rows()]
        top = rec.recommend(messages, k=10, exclude_mentioned=False, summary=sample.summary)
        best = torch.topk(serving[row], 10)  # the same top 10 up to float noise among tied items
        assert torch.allclose(torch.tensor([score for _, score in top]), best.values, atol=1e-4)
        assert {item for item, score in top if score > best.values[-1] + 1e-4} <= {
            data.item_ids[i] for i in best.indices
        }
        assert torch.allclose(rec.scores(messages, summary=sample.summary), serving[row], atol=1e-4)
    assert not torch.allclose(oracle, serving)  # the oracle-labels evaluation reads the labels
    scored = {"index": data.index, "summaries": summaries}
    assert evaluate_model(rec.model, labelled, **scored) == evaluate_model(
        rec.model, without_labels(labelled), **scored
    )
    serving_metrics = evaluate_model(rec.model, data.samples["test"], **scored)
    oracle_metrics = evaluate_model(rec.model, data.samples["test"], **scored, labels="oracle")
    for protocol in ("standard", "no_repeats"):
        assert report.metrics["test"][protocol] == pytest.approx(serving_metrics[protocol])
        assert report.metrics["test_oracle_labels"][protocol] == pytest.approx(oracle_metrics[protocol])


def test_training_from_the_manifest_reproduces_the_metrics(run: tuple[str, RunReport]) -> None:
    lake, report = run
    result, _ = retrain_from_manifest(Path(report.artifact_dir) / "manifest.json", lake=lake)
    assert result.metrics == report.metrics


def test_altered_artifact_is_refused(run: tuple[str, RunReport], tmp_path: Path) -> None:
    import shutil

    _, report = run
    copy = tmp_path / "copy"
    shutil.copytree(report.artifact_dir, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    with pytest.raises(ArtifactError):
        load_artifact(copy)


def test_a_model_exported_with_the_flat_train_config_still_loads() -> None:
    saved = json.loads((LEGACY_ARTIFACT / "config.json").read_text())["train"]
    assert saved["lm_kind"] == "random" and "id_dim" in saved and "model" not in saved  # the old flat form
    rec = load_artifact(LEGACY_ARTIFACT)
    expected = json.loads((LEGACY_ARTIFACT / "expected.json").read_text())
    assert torch.allclose(rec.scores(expected["messages"]), torch.tensor(expected["scores"]), atol=1e-5)
    assert [item for item, _ in rec.recommend(expected["messages"], k=5)] == [item for item, _ in expected["top5"]]
