"""The nightly DAG's own rules, with stage flows replaced by small functions that write real tables:
transient errors are retried and bad data is not, a failure stops the stages after it, every stage run is a
``pipeline_runs`` row, and a stage whose inputs changed runs again while the others skip."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import features
import flows.nightly as nightly
import tasks.stages
from features import CommitInfo
from flows.plan import plan
from tasks.settings import StageContext
from tasks.stages import downstream_labels, stage_names, stage_spec
from tasks.summary import StageSummary

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _write_items(lake: str, text: str) -> dict[str, object]:
    frame = pl.DataFrame(
        {
            "item_id": ["a", "b"],
            "source": "t",
            "title": ["A", "B"],
            "text": text,
            "content_hash": text,
            "ingested_at": datetime.now(UTC),
        }
    )
    features.upsert("items", frame, commit=CommitInfo(stage="ingest_catalog"), lake=lake)
    return {"written": 2}


def _write_vectors(lake: str) -> dict[str, object]:
    items = features.read("items", lake=lake).collect()
    frame = pl.DataFrame(
        {
            "item_id": items["item_id"],
            "modality": "text",
            "model_id": "m",
            "source_hash": items["content_hash"],
            "dim": 2,
            "vector": [[1.0, 0.0]] * items.height,
            "computed_at": datetime.now(UTC),
        },
        schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
    )
    features.upsert("item_embeddings", frame, commit=CommitInfo(stage="embed"), lake=lake)
    return {"embedded": items.height}


@pytest.fixture
def fake_stages(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """ingest writes items (text from its 'catalog' parameter), embed writes vectors; embed and graphs fail
    with the exceptions queued in ``calls["_failures"]``."""
    calls = dict.fromkeys(stage_names(), 0)
    failures: dict[str, list[BaseException]] = {"embed": [], "graphs": []}

    def ingest(settings: object, context: StageContext) -> StageSummary:
        calls["ingest"] += 1
        catalog = getattr(settings, "catalog", None)
        _write_items(context.lake.root, Path(catalog).read_text() if catalog else "none")
        return StageSummary()

    def embed(settings: object, context: StageContext) -> StageSummary:
        calls["embed"] += 1
        if failures["embed"]:
            raise failures["embed"].pop(0)
        _write_vectors(context.lake.root)
        return StageSummary()

    def graphs(settings: object, context: StageContext) -> StageSummary:
        calls["graphs"] += 1
        if failures["graphs"]:
            raise failures["graphs"].pop(0)
        return StageSummary()

    fakes = {"ingest": ingest, "embed": embed, "graphs": graphs}
    specs = [
        dataclasses.replace(s, entry=fakes[s.name], summary="tasks.summary:StageSummary") if s.name in fakes else s
        for s in tasks.stages.stages()
    ]
    monkeypatch.setattr(tasks.stages, "_STAGES", specs)
    calls["_failures"] = failures  # type: ignore[assignment]
    return calls


def _rows(lake: Path) -> pl.DataFrame:
    return features.read("pipeline_runs", lake=lake).collect()


def test_transient_errors_are_retried_and_bad_data_is_not(tmp_path: Path, fake_stages: dict) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "catalog.csv"
    catalog.write_text("first")
    kwargs = {
        "lake": str(lake),
        "catalog": str(catalog),
        "stages": ["ingest", "embed", "graphs"],
        "retries": 2,
        "retry_delay_s": 0.05,
    }
    fake_stages["_failures"]["graphs"] = [TimeoutError("read timed out"), OSError("connection reset")]
    result = nightly.nightly_flow(**kwargs)
    assert result.stages["graphs"]["status"] == "ok" and result.stages["graphs"]["attempts"] == 3
    assert fake_stages["graphs"] == 3

    catalog.write_text("second")  # new input: ingest and embed run again
    fake_stages["_failures"]["graphs"] = [ValueError("malformed edge row")]
    with pytest.raises(ValueError, match="malformed edge row"):
        nightly.nightly_flow(**kwargs)
    assert fake_stages["graphs"] == 4  # bad data: one attempt, no retry
    failed = _rows(lake).filter((pl.col("stage") == "graphs") & (pl.col("status") == "failed")).row(0, named=True)
    assert json.loads(failed["counts"])["attempts"] == 1 and "malformed edge row" in failed["counts"]


def test_a_failure_stops_later_stages_and_the_rerun_skips_what_finished(tmp_path: Path, fake_stages: dict) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "catalog.csv"
    catalog.write_text("first")
    kwargs = {"lake": str(lake), "catalog": str(catalog), "stages": ["graphs", "embed", "ingest"]}
    fake_stages["_failures"]["embed"] = [KeyError("no such column")]
    with pytest.raises(KeyError):
        nightly.nightly_flow(**kwargs)
    assert fake_stages["graphs"] == 0  # after a failed stage nothing runs
    rows = _rows(lake)
    assert dict(zip(rows["stage"], rows["status"], strict=True)) == {"ingest": "ok", "embed": "failed"}

    again = nightly.nightly_flow(**kwargs)  # the order of `stages` does not matter: the DAG's does
    assert [(k, v["status"]) for k, v in again.stages.items()] == [
        ("ingest", "skipped"),
        ("embed", "ok"),
        ("graphs", "ok"),
    ]
    assert fake_stages["ingest"] == 1  # the finished stage was not redone


def test_noop_run_writes_nothing_and_changed_input_reruns_downstream(tmp_path: Path, fake_stages: dict) -> None:
    lake, catalog = tmp_path / "lake", tmp_path / "catalog.csv"
    catalog.write_text("first")
    kwargs = {"lake": str(lake), "catalog": str(catalog), "stages": ["ingest", "embed"]}
    first = nightly.nightly_flow(**kwargs)
    assert {k: v["status"] for k, v in first.stages.items()} == {"ingest": "ok", "embed": "ok"}
    embed_row = _rows(lake).filter(pl.col("stage") == "embed").row(0, named=True)
    counts = json.loads(embed_row["counts"])
    assert counts["rows_in"] == 2 and counts["rows_out"] == 2  # read 2 items, wrote 2 vectors
    assert json.loads(embed_row["input_versions"]) == {"items": 0}

    before = features.tables(lake=lake).select("table", "version")
    noop = nightly.nightly_flow(**kwargs)
    assert {k: v["status"] for k, v in noop.stages.items()} == {"ingest": "skipped", "embed": "skipped"}
    assert features.tables(lake=lake).select("table", "version").equals(before)  # not even pipeline_runs

    _write_items(str(lake), "edited by hand")  # an upstream change the DAG did not make
    planned = dict(plan(lake=str(lake), stages=["ingest", "embed"], catalog=str(catalog)))
    assert planned["embed"].startswith("run: changed since run") and "items v0 -> v1" in planned["embed"], planned
    assert "2 rows in its input tables" in planned["embed"] and "s at its last run's rate" in planned["embed"]
    changed = nightly.nightly_flow(**kwargs)
    assert {k: v["status"] for k, v in changed.stages.items()} == {"ingest": "ok", "embed": "ok"}
    assert fake_stages["embed"] == 2


def test_each_stage_ignores_only_the_commits_of_the_stages_after_it() -> None:
    assert downstream_labels("ingest") >= {"crawl", "embed", "graphs", "train", "summarize"}
    assert "ingest_catalog" not in downstream_labels("crawl") and "crawl" in downstream_labels("ingest")
    assert downstream_labels("train") == set()
    assert "items" in stage_spec("embed").watched and "item_embeddings" in stage_spec("embed").watched
    with pytest.raises(ValueError, match="unknown stage"):
        stage_spec("deploy")


def test_ingest_knows_when_its_run_also_runs_the_later_stages(tmp_path: Path, fake_stages: dict) -> None:
    seen: list[bool] = []
    spec = stage_spec("ingest")
    real = spec.entry

    def ingest(settings: object, context: StageContext) -> StageSummary:
        seen.append(context.runs_later_stages)
        return real(settings, context)

    specs = [dataclasses.replace(s, entry=ingest) if s.name == "ingest" else s for s in tasks.stages.stages()]
    tasks.stages._STAGES[:] = specs  # fake_stages' monkeypatch restores the registry afterwards
    lake, catalog = tmp_path / "lake", tmp_path / "catalog.csv"
    catalog.write_text("first")
    nightly.nightly_flow(lake=str(lake), catalog=str(catalog), stages=["ingest"])
    catalog.write_text("second")
    nightly.nightly_flow(lake=str(lake), catalog=str(catalog), stages=["ingest", "embed"])
    assert seen == [False, True]  # an ingest-only run announces new dialogues; the pipeline run does not
