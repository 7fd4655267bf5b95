"""The demo flow end to end (small): packaged catalog + synthetic dialogues into a fresh lake, twice."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import polars as pl
import pytest

import features
from flows.nightly import PipelineResult

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dag_run_id(lake: str) -> str:
    """The flow run id the DAG recorded with its stage rows."""
    rows = features.read("pipeline_runs", lake=lake).filter(pl.col("stage") == "ingest").collect()
    return str(rows["flow_run_id"][0])


def _summaries(run: PipelineResult) -> dict[str, dict]:
    """Each stage's summary as a plain dict of its own counts."""
    plain = {name: summary.to_dict() for name, summary in run.results.items()}
    inner = ("inputs", "parts", "report")  # ingest's per-input counts, summarize's parts, train's report
    return {name: next((d[k] for k in inner if k in d), d) for name, d in plain.items()}


def test_demo_flow_builds_lake_and_rerun_writes_nothing(tmp_path: Path) -> None:
    from flows.demo import demo_flow
    from tests.tasks.summarize.tiny_lm import build_tiny_lm

    lake, workdir, port = str(tmp_path / "lake"), str(tmp_path / "demo"), _free_port()
    tiny_lm = str(build_tiny_lm(tmp_path / "tiny-lm"))  # random weights: wiring only, answers get quarantined
    kwargs = {
        "lake": lake,
        "workdir": workdir,
        "items": 60,
        "synthetic_dialogues": 12,
        "use_redial": False,
        "poster_port": port,
        "summarize_dialogues": 2,
        "summarize_model_dir": tiny_lm,
        "artifacts_root": str(tmp_path / "artifacts"),
        "train_config": {"lm_kind": "random", "max_context_tokens": 32},
    }
    demo = demo_flow(**kwargs)
    run = demo.run
    result = _summaries(run)  # each stage's own summary
    assert demo.inputs["dialogue_source"] == "synthetic"
    assert {name: s["status"] for name, s in run.stages.items()} == dict.fromkeys(
        ["ingest", "crawl", "summarize", "embed", "graphs", "train"], "ok"
    )
    assert result["train"]["version"] == 1 and result["train"]["promoted"]  # the train step ran and registered
    skipped = result["train"]["skipped"]  # the graphs and embeddings built above are used, not skipped
    assert "item_graph_edges" not in skipped and "item_embeddings" not in skipped
    assert not any(key.startswith("graph:") for key in skipped)

    items = features.read("items", lake=lake).collect()
    catalog = items.filter(pl.col("source") == "movielens")
    assert catalog.height == 60
    assert catalog.filter(pl.col("item_id") == "ml:1")["title"].item() == "Toy Story"
    # posters are served from 127.0.0.1 by the demo and fetched by the crawler like any other URL
    assert catalog["poster_url"].str.starts_with(f"http://127.0.0.1:{port}/").all()
    assert result["crawl"]["stored"] == 60 and result["crawl"]["failed"] == 0
    assert catalog["poster_sha256"].is_not_null().all()
    blobs = features.read("poster_blobs", lake=lake).collect()
    assert set(blobs["sha256"]) == set(catalog["poster_sha256"])

    dialogues = features.read("dialogues", lake=lake).collect()
    assert dialogues.height == 12 and set(dialogues["source"]) == {"synthetic"}
    mentioned = features.read("turns", lake=lake).explode("mentioned_item_ids").collect()["mentioned_item_ids"]
    assert mentioned.drop_nulls().str.starts_with("ml:").any()  # synthetic mentions link to catalog items
    assert items.filter(pl.col("source") == "mention:synthetic").height > 0  # the rest: items of their own

    embedded = result["embed"]["modalities"]
    assert embedded["image"]["embedded"] == 60 and embedded["image"]["random_weights"]
    n_items = items.height
    assert embedded["text"]["embedded"] == n_items and embedded["clip_text"]["embedded"] == n_items
    assert embedded["summary"]["embedded"] == result["summarize"]["items"]["written"]
    vectors = features.read("item_embeddings", lake=lake).collect()
    counts = vectors.filter(pl.col("modality") != "summary").group_by("modality").len().sort("modality")
    assert counts["len"].to_list() == [n_items, 60, n_items]

    assert set(result["graphs"]["built"]) == {"image_knn", "clip_text_knn", "text_knn", "co_mention", "transition"}
    edges = features.read("item_graph_edges", lake=lake).collect()
    assert edges.filter(pl.col("graph") == "image_knn").height == 60 * 10

    prefs = result["summarize"]["preferences"]
    assert prefs["dialogues"] == 2 and prefs["dialogues_total"] == 12 and prefs["candidates"] > 0
    assert prefs["written"] + prefs["quarantined"] == prefs["candidates"]

    report = Path(run.report)  # the run report, under the lake by default, with its plots
    assert report == Path(lake) / "_reports" / dag_run_id(lake) / "report.md" and report.with_suffix(".html").exists()
    assert (report.parent / "graph_degrees.png").exists() and "co_mention" in report.read_text()

    runs = features.read("pipeline_runs", lake=lake).collect()
    dag_rows = runs.filter(pl.col("stage").is_in(list(run.stages)))
    assert sorted(dag_rows["stage"]) == sorted(run.stages) and set(dag_rows["status"]) == {"ok"}
    crawl_row = dag_rows.filter(pl.col("stage") == "crawl").row(0, named=True)
    assert json.loads(crawl_row["counts"])["rows_out"] >= 60  # fetch rows, blob rows, item updates
    assert json.loads(crawl_row["output_versions"])["poster_blobs"] == features.table_version("poster_blobs", lake=lake)

    before = features.tables(lake=lake).select("table", "version")
    again = demo_flow(**kwargs).run  # nothing new: every stage skips without starting its subflow
    assert {name: s["status"] for name, s in again.stages.items()} == dict.fromkeys(run.stages, "skipped")
    assert again.results == {} and again.report is None  # nothing ran: no new report
    assert all("unchanged since run" in str(s["reason"]) for s in again.stages.values())
    # the demo stored its settings in the lake: a plain run there (no arguments) has nothing to do
    from flows.plan import plan

    planned = plan(lake=lake)
    assert all(what.startswith("skip") for _, what in planned), planned
    assert features.tables(lake=lake).select("table", "version").equals(before)  # not one new version, anywhere

    # a forced run goes through every stage flow, and each finds nothing to do (train, forced, would retrain)
    forced = _summaries(demo_flow(**kwargs, force=True, train=False).run)
    assert forced["ingest"]["dialogues"]["written"] == 0
    assert forced["crawl"]["requested"] == 0 and forced["crawl"]["already_stored"] == 60  # no request at all
    assert all(m["embedded"] == 0 for m in forced["embed"]["modalities"].values())
    assert forced["graphs"]["built"] == {} and len(forced["graphs"]["skipped"]) == 5  # nothing rebuilt
    assert forced["summarize"]["preferences"]["generated"] == 0 and forced["summarize"]["items"]["generated"] == 0
    after = features.tables(lake=lake).select("table", "version").filter(pl.col("table") != "pipeline_runs")
    assert after.equals(before.filter(pl.col("table") != "pipeline_runs"))
