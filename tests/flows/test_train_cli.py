"""``mmcrs train``, ``mmcrs models list|show|promote`` and ``mmcrs recommend`` on a tiny lake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flows.nightly  # noqa: F401  (import prefect now: its log handlers must bind the real stderr, not CliRunner's)
import training
from flows.cli import app

from ..training.conftest import write_fixture_lake

runner = CliRunner()
TINY = {
    "lm_kind": "random",
    "lm_hidden": 32,
    "id_dim": 16,
    "epochs": 2,
    "batch_size": 16,
    "lr": 0.01,
    "max_context_tokens": 32,
    "progress": False,
}


def test_recommend_without_a_model_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["recommend", "--dialogue", "I liked @m1", "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 2 and "error" in result.output


def test_train_without_turns_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--lake", str(tmp_path / "lake"), "--artifacts", str(tmp_path / "a")])
    assert result.exit_code == 2 and "ingest dialogues first" in " ".join(result.output.split())


@pytest.mark.usefixtures("prefect_harness")
def test_train_list_show_recommend_promote(tmp_path: Path) -> None:
    lake, artifacts, config = str(tmp_path / "lake"), str(tmp_path / "artifacts"), tmp_path / "tiny.json"
    write_fixture_lake(lake)
    config.write_text(json.dumps(TINY))
    args = ["--lake", lake, "--artifacts", artifacts, "--config", str(config)]
    first = runner.invoke(app, ["train", *args])
    assert first.exit_code == 0, first.output
    assert "v1" in first.output and "promoted: True" in first.output and "comention_knn" in first.output

    again = runner.invoke(app, ["train", *args])  # nothing changed: nothing trained
    assert again.exit_code == 0 and "unchanged since run" in " ".join(again.output.split())

    listed = runner.invoke(app, ["models", "list", "--lake", lake])
    assert listed.exit_code == 0 and "production" in listed.output
    shown = runner.invoke(app, ["models", "show", "mmcrs-graph-prompt@production", "--lake", lake])
    assert shown.exit_code == 0 and '"version": 1' in shown.output and "model.safetensors" in shown.output

    dialogue = tmp_path / "dialogue.json"
    dialogue.write_text(json.dumps([{"role": "seeker", "text": "I loved @m2"}]))
    rec = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            "mmcrs-graph-prompt@production",
            "--dialogue",
            str(dialogue),
            "--top",
            "3",
            "--lake",
            lake,
        ],
    )
    assert rec.exit_code == 0 and "Movie" in rec.output
    expected = training.load("mmcrs-graph-prompt", 1, lake=lake).recommend(
        [{"role": "seeker", "text": "I loved @m2"}], k=3
    )
    assert all(item in rec.output for item, _ in expected)

    second = runner.invoke(app, ["train", *args, "--force", "--seed", "1", "--no-promote"])
    assert second.exit_code == 0 and "v2" in second.output
    forced = runner.invoke(app, ["models", "promote", "mmcrs-graph-prompt@2", "--force", "--lake", lake])
    assert forced.exit_code == 0 and "promoted" in forced.output
    assert training.load("mmcrs-graph-prompt", "production", lake=lake).version == 2
    same = runner.invoke(app, ["models", "promote", "mmcrs-graph-prompt@2", "--lake", lake])
    assert same.exit_code == 1 and "already production" in same.output

    shutil.rmtree(Path(artifacts) / "mmcrs-graph-prompt" / "2")  # the artifact vanished: exit 2, named
    for command in (["models", "show", "mmcrs-graph-prompt@2"], ["recommend", "--dialogue", str(dialogue)]):
        gone = runner.invoke(app, [*command, "--lake", lake])
        assert gone.exit_code == 2, gone.output
        assert "mmcrs-graph-prompt v2" in gone.output and "missing or unreadable" in gone.output
