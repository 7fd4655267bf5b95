"""The demo flow: build demo inputs from packaged real data, then run the nightly DAG on them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow

import features
from features.lake_settings import write_stage_settings
from flows.nightly import PipelineResult, nightly_flow
from tasks.demo.server import DEFAULT_PORT, serve_directory
from tasks.demo.stage import DemoConfig
from tasks.demo.task import build_demo_inputs_task

# The demo's settings, in the shape of a settings file (``mmcrs run --settings``). The training part is small
# enough for a minute or two on a laptop CPU: the real MiniLM cut to 2 layers, short contexts, 2 epochs over a
# seeded subset of 512 training samples (final metrics still use every valid/test sample).
DEMO_SETTINGS = """
[crawl]
allow_hosts = ["127.0.0.1"]

[embed]
clip_model = "random:mmcrs-tiny@0"

[train.config]
epochs = 2
max_context_tokens = 32
batch_size = 64
lm_layers = 2
max_train_samples = 512
max_eval_samples = 128
patience = 1
"""


def demo_settings(
    *,
    clip_model: str | None,
    summarize_dialogues: int,
    summarize_model_dir: str | None,
    train_config: dict | None,
    train: bool = True,
) -> dict[str, dict[str, Any]]:
    """The demo's per-stage settings: ``DEMO_SETTINGS`` with the flow's arguments over it (a stage the demo
    leaves out is turned off, so later runs on the lake leave it out too)."""
    settings: dict[str, dict[str, Any]] = tomllib.loads(DEMO_SETTINGS)
    summarize = {"limit": summarize_dialogues, "model_dir": summarize_model_dir}
    overrides = {
        "summarize": summarize if summarize_dialogues > 0 else {"enabled": False},
        "embed": {"clip_model": clip_model},
        "train": {"config": settings["train"]["config"] | (train_config or {})} | ({} if train else {"enabled": False}),
    }
    for name, values in overrides.items():
        settings.setdefault(name, {}).update({k: v for k, v in values.items() if v is not None})
    return settings


@dataclass(frozen=True)
class DemoResult:
    """The demo's inputs (catalog and dialogue files, counts) and the pipeline run on them."""

    inputs: dict[str, str]
    run: PipelineResult


@flow(name="demo", log_prints=True)
def demo_flow(
    lake: str | None = None,
    workdir: str = ".demo",
    items: int | None = None,
    synthetic_dialogues: int = 500,
    use_redial: bool = True,
    poster_port: int = DEFAULT_PORT,
    clip_model: str | None = None,
    summarize_dialogues: int = 4,
    summarize_model_dir: str | None = None,
    train: bool = True,
    train_config: dict | None = None,
    artifacts_root: str | None = None,
    lock_wait_s: float = 0.0,
    force: bool = False,
) -> DemoResult:
    """Demo catalog (MovieLens-100K + CC0 movie database, rendered posters served from 127.0.0.1),
    dialogues, then the nightly DAG (ingest -> crawl -> summarize -> embed -> graphs -> train) on them.

    ``summarize_dialogues``: a sample of dialogues to summarise (a CPU summarises about one a second; 0 skips
    the stage); ``summarize_model_dir``: a local model folder instead of SmolLM2; ``train``: run the (small)
    train step, which skips inputs absent from the lake with the reason; ``force``: start every stage flow
    even when nothing it depends on changed (each still does only what is missing).
    """
    settings = demo_settings(
        clip_model=clip_model,
        summarize_dialogues=summarize_dialogues,
        summarize_model_dir=summarize_model_dir,
        train_config=train_config,
        train=train,
    )
    # later runs on this lake (mmcrs run, a stage command, a deployment) start from the demo's settings
    write_stage_settings(features.resolve_lake(lake), settings)
    with serve_directory(Path(workdir) / "posters", port=poster_port) as base_url:
        inputs = build_demo_inputs_task(workdir, DemoConfig(items, synthetic_dialogues, use_redial, base_url))
        run = nightly_flow(
            lake=lake,
            dialogues=inputs["dialogues"],
            catalog=inputs["catalog"],
            catalog_source="movielens",
            settings=settings,
            artifacts_root=artifacts_root,
            lock_wait_s=lock_wait_s,
            force=force,
        )
    return DemoResult(inputs, run)
