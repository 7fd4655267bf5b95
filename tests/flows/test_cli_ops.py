"""``mmcrs features pull``, ``mmcrs run`` and ``mmcrs ci retrain``: outputs and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import ANY

import polars as pl
import pytest
from typer.testing import CliRunner

import features
import flows.nightly  # noqa: F401  (import prefect now: its log handlers must bind the real stderr)
from features import CommitInfo
from features.lock import lake_lock
from flows.cli import app

runner = CliRunner()


def _items(text: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "source": "t",
            "title": ["A", "B", "C"],
            "text": text,
            "content_hash": text,
            "ingested_at": datetime.now(UTC),
        }
    )


def test_features_pull_writes_the_pinned_version_with_a_sidecar(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    features.upsert("items", _items("old"), commit=CommitInfo(stage="test"), lake=lake)
    features.upsert("items", _items("new"), commit=CommitInfo(stage="test"), lake=lake)
    out = tmp_path / "pulled" / "items.parquet"
    result = runner.invoke(app, ["features", "pull", "items", "--version", "0", "--out", str(out), "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out)["text"].to_list() == ["old"] * 3
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["version"] == 0 and sidecar["rows"] == 3 and sidecar["table"] == "items"

    default = runner.invoke(app, ["features", "pull", "items", "--lake", str(lake)], catch_exceptions=False)
    assert default.exit_code == 0 and "items v1 (3 rows)" in default.output
    Path("items-v1.parquet").unlink()
    Path("items-v1.json").unlink()

    missing = runner.invoke(app, ["features", "pull", "items", "--version", "9", "--lake", str(lake)])
    assert missing.exit_code == 2 and "version 9 does not exist" in " ".join(missing.output.split())
    unknown = runner.invoke(app, ["features", "pull", "nope", "--lake", str(lake)])
    assert unknown.exit_code == 2


def test_run_rejects_unknown_targets_and_a_busy_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    bad = runner.invoke(app, ["run", "everything", "--lake", str(lake)])
    assert bad.exit_code == 2 and "unknown target" in bad.output
    missing = runner.invoke(app, ["run", "--dialogues", str(tmp_path / "none.jsonl"), "--lake", str(lake)])
    assert missing.exit_code == 2 and "file not found" in missing.output
    bad_settings = tmp_path / "s.json"
    bad_settings.write_text("[1, 2]")
    wrong = runner.invoke(app, ["run", "embed", "--settings", str(bad_settings), "--lake", str(lake)])
    assert wrong.exit_code == 2 and "expected a table of stages" in " ".join(wrong.output.split())


@pytest.mark.usefixtures("prefect_harness")
def test_run_on_a_busy_lake_exits_3(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with lake_lock(lake):
        busy = runner.invoke(app, ["run", "graphs", "--lake", str(lake)])
    assert busy.exit_code == 3 and "lake is busy" in " ".join(busy.output.split())


@pytest.mark.usefixtures("prefect_harness")
def test_ci_retrain_passes_first_then_fails_a_candidate_that_is_not_better(tmp_path: Path) -> None:
    from tasks.demo.stage import DemoConfig, build_demo_inputs
    from tasks.ingest.catalog import ingest_catalog

    lake, artifacts = tmp_path / "lake", tmp_path / "artifacts"
    inputs = build_demo_inputs(
        workdir=tmp_path / "demo", config=DemoConfig(items=40, synthetic_dialogues=16, use_redial=False)
    )
    ingest_catalog(inputs["catalog"], source="movielens", lake=lake)
    lines = Path(inputs["dialogues"]).read_text().splitlines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines[:10]) + "\n")
    second.write_text("\n".join(lines[10:]) + "\n")
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "embed": {"clip_model": "random:mmcrs-tiny@0", "modalities": ["clip_text", "text"]},
                "train": {
                    "config": {
                        "lm_kind": "random",
                        "lm_hidden": 32,
                        "id_dim": 16,
                        "epochs": 1,
                        "batch_size": 16,
                        "max_context_tokens": 16,
                        "progress": False,
                    }
                },
            }
        )
    )
    args = [
        "--settings",
        str(settings),
        "--artifacts",
        str(artifacts),
        "--lake",
        str(lake),
        "--stages",
        "embed,graphs,train",
    ]

    passed = runner.invoke(app, ["ci", "retrain", "--dialogues", str(first), "--promote", *args])
    assert passed.exit_code == 0, passed.output
    assert "PASS: no production model yet" in passed.output and "(promoted to production)" in passed.output

    verdict = tmp_path / "verdict.json"
    worse = runner.invoke(
        app, ["ci", "retrain", "--dialogues", str(second), "--min-delta", "1.0", "--json", str(verdict), *args]
    )
    assert worse.exit_code == 1, worse.output
    assert "WORSE" in worse.output and "valid/standard/recall@10" in worse.output
    judged = json.loads(verdict.read_text())
    assert judged == {**judged, "candidate": 2, "production": 1, "passed": False, "promoted": False}
    assert judged["status"] == "worse" and judged["min_delta"] == 1.0 and judged["message"].startswith("valid/")
    assert (
        judged["artifact_uri"] and judged["input_versions"] and all(v >= 0 for v in judged["input_versions"].values())
    )
    assert judged["samples"]["train"] > 0 and set(judged["dialogues"]) == {"train", "valid", "test"}
    assert features.read("dialogues", lake=lake).collect().height == 16  # the new dialogues were ingested

    error = runner.invoke(
        app, ["ci", "retrain", "--dialogues", str(tmp_path / "missing.jsonl"), "--json", str(verdict), *args]
    )
    assert error.exit_code == 2
    failed = json.loads(verdict.read_text())  # written on an error too
    assert failed["status"] == "error" and "file not found" in failed["message"] and failed["min_delta"] == 0.0
    bad = tmp_path / "bad-settings.json"
    bad.write_text(json.dumps({"embd": {}}))  # fails inside the flow, before any stage runs
    crashed = runner.invoke(
        app, ["ci", "retrain", "--dialogues", str(second), "--json", str(verdict), "--settings", str(bad), *args[2:]]
    )
    assert crashed.exit_code == 2, crashed.output
    assert json.loads(verdict.read_text()) == {"status": "error", "message": ANY, "min_delta": 0.0}
    assert "embd" in json.loads(verdict.read_text())["message"]


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("content", ["{garbage\n[1, 2]\nnull\n", ""], ids=["all-garbage", "empty"])
def test_ci_retrain_exits_2_when_no_new_usable_dialogue_landed(tmp_path: Path, content: str) -> None:
    lake, dialogues = tmp_path / "lake", tmp_path / "new.jsonl"
    dialogues.write_text(content)
    result = runner.invoke(app, ["ci", "retrain", "--dialogues", str(dialogues), "--lake", str(lake)])
    assert result.exit_code == 2, result.output
    assert "no new usable dialogues landed" in " ".join(result.output.split()) and "PASS" not in result.output
    assert features.table_version("dialogues", lake=lake) is None  # nothing landed, nothing after ingest ran


@pytest.mark.usefixtures("prefect_harness")
def test_run_with_nothing_new_says_so_without_running_anything(tmp_path: Path) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "items.csv"
    catalog.write_text("item_id,title\nm1,Heat\nm2,Alien\n")
    args = ["run", "ingest", "--catalog", str(catalog), "--lake", str(lake)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    before = features.tables(lake=lake).select("table", "version")
    planned = runner.invoke(app, [*args, "--plan"])
    assert planned.exit_code == 0 and "skip: inputs and config unchanged since run" in " ".join(planned.output.split())
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "nothing to do: every stage is up to date" in again.output
    assert features.tables(lake=lake).select("table", "version").equals(before)  # not even a pipeline_runs row
