"""Extending the pipeline the way ``docs/architecture.md`` says: a toy modality (one ``ModalitySpec`` with its
kNN graph) and a toy stage (one ``StageSpec``), declared here and nowhere else, run through the nightly runner
on a tmp lake — planned, run, recorded, skipped when nothing changed, run again when its input changes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import features
import tasks.stages
from features import CommitInfo
from flows.cli import app
from flows.nightly import nightly_flow
from flows.plan import plan
from tasks.settings import StageContext, StageSettings
from tasks.stages import StageSpec
from tasks.summary import StageSummary
from training.modalities import Encoder, ModalitySpec, item_columns, knn_graph_spec, register

pytestmark = pytest.mark.usefixtures("prefect_harness")

TOY_MODALITY = ModalitySpec("toy_title", item_columns("title"), Encoder.CLIP_TEXT, knn_graph="toy_title_knn")


@dataclass(frozen=True)
class SameYearSettings(StageSettings):
    """The toy stage's settings: the smallest year group that gets edges."""

    min_items: int = 2


@dataclass
class SameYearSummary(StageSummary):
    """The toy stage's summary: edges written per year."""

    title = "same_year"
    edges: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[dict[str, object]]:
        return [{"year": year, "edges": n} for year, n in sorted(self.edges.items())]


def same_year(settings: SameYearSettings, context: StageContext) -> SameYearSummary:
    """Connect the items released in the same year (a graph of its own in ``item_graph_edges``)."""
    items = features.read("items", columns=["item_id", "year"], lake=context.lake).drop_nulls("year").collect()
    pairs = items.join(items, on="year", suffix="_dst").filter(pl.col("item_id") != pl.col("item_id_dst"))
    pairs = pairs.filter(pl.len().over("year") >= settings.min_items * (settings.min_items - 1))
    edges = pairs.select(
        pl.lit("same_year").alias("graph"),
        pl.col("item_id").alias("src"),
        pl.col("item_id_dst").alias("dst"),
        pl.lit(1.0, pl.Float32).alias("weight"),
        pl.lit(None, pl.Int32).alias("rank"),
    )
    features.upsert("item_graph_edges", edges, commit=CommitInfo(stage="same_year"), lake=context.lake)
    counts = pairs.group_by("year").len()
    return SameYearSummary({str(y): int(n) for y, n in counts.iter_rows()})


TOY_STAGE = StageSpec(
    "same_year",
    entry=same_year,
    settings=SameYearSettings,
    reads=("items",),
    writes=("item_graph_edges",),
    labels=("same_year",),
    summary=SameYearSummary,
)


def _catalog(path: Path, titles: list[str]) -> Path:
    years = [1999, 1999, 2004, 2004, 2010][: len(titles)]
    rows = ["item_id,title,year", *(f"m{i},{t},{y}" for i, (t, y) in enumerate(zip(titles, years, strict=True)))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_toy_modality_and_a_toy_stage_run_through_the_nightly_runner(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    catalog = _catalog(tmp_path / "items.csv", ["Heat", "Alien", "Up", "Cars", "Her"])
    settings = {
        "embed": {"modalities": ["toy_title"], "clip_model": "random:mmcrs-tiny@0", "batch_size": 4},
        "graphs": {"graphs": ["toy_title_knn"], "k": 2},
        "same_year": {"min_items": 2},
    }
    stages = ["ingest", "embed", "graphs", "same_year"]
    with register(TOY_MODALITY, knn_graph_spec(TOY_MODALITY)), tasks.stages.register(TOY_STAGE, after="graphs"):
        planned = dict(plan(lake=lake, stages=stages, settings=settings, catalog=str(catalog)))
        assert all(planned[s].startswith("run: never ran on this lake") for s in stages), planned
        listed = CliRunner().invoke(app, ["run", "same_year", "--plan", "--lake", lake])
        assert listed.exit_code == 0 and "same_year" in listed.output  # `mmcrs run` targets come from the registry

        first = nightly_flow(lake=lake, catalog=str(catalog), stages=stages, settings=settings, report=False)
        assert {name: s["status"] for name, s in first.stages.items()} == dict.fromkeys(stages, "ok")
        vectors = features.read("item_embeddings", lake=lake).filter(pl.col("modality") == "toy_title").collect()
        assert vectors.height == 5
        edges = features.read("item_graph_edges", lake=lake).collect()
        assert edges.filter(pl.col("graph") == "toy_title_knn").height == 5 * 2
        assert sorted(edges.filter(pl.col("graph") == "same_year")["src"]) == ["m0", "m1", "m2", "m3"]
        assert first.results["same_year"].rows() == [{"year": "1999", "edges": 2}, {"year": "2004", "edges": 2}]
        row = features.read("pipeline_runs", lake=lake).filter(pl.col("stage") == "same_year").collect()
        assert row["status"].to_list() == ["ok"] and json.loads(row["counts"][0])["rows_out"] == 4

        again = nightly_flow(lake=lake, catalog=str(catalog), stages=stages, settings=settings, report=False)
        assert {name: s["status"] for name, s in again.stages.items()} == dict.fromkeys(stages, "skipped")

        _catalog(catalog, ["Heat", "Alien", "Up", "Cars", "Her (2013)"])  # one title changes
        planned = dict(plan(lake=lake, stages=stages, settings=settings, catalog=str(catalog)))
        assert planned["ingest"].startswith("run: settings, input files or code changed"), planned
        assert planned["embed"].startswith("skip: inputs and config unchanged")  # known only once ingest ran
        third = nightly_flow(lake=lake, catalog=str(catalog), stages=stages, settings=settings, report=False)
        assert {name: s["status"] for name, s in third.stages.items()} == dict.fromkeys(stages, "ok")
        changed = third.results["embed"].to_dict()["modalities"]["toy_title"]
        assert changed["embedded"] == 1  # only the changed title is embedded again
    assert "same_year" not in tasks.stages.stage_names()  # the registry is as it was


def test_a_stage_setting_that_does_not_exist_fails_before_anything_runs(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with tasks.stages.register(TOY_STAGE), pytest.raises(ValueError, match="unknown setting 'min_item'"):
        nightly_flow(lake=str(lake), stages=["same_year"], settings={"same_year": {"min_item": 3}})
    assert not lake.exists()  # nothing was written, not even a lock file's folder
