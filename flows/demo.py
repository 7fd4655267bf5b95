"""The demo flow: build demo inputs from packaged real data, then run the nightly DAG on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.nightly import PipelineResult, nightly_flow
from tasks.demo.server import DEFAULT_PORT, serve_directory
from tasks.demo.task import build_demo_inputs_task
from tasks.stages import stage_names

DEMO_CLIP_MODEL = "random:mmcrs-tiny@0"
# Small enough for about a minute or two on a laptop CPU: the real MiniLM cut to 2 layers, short contexts,
# 2 epochs over a seeded subset of 512 training samples (final metrics still use every valid/test sample).
DEMO_TRAIN_CONFIG: dict[str, object] = {
    "epochs": 2,
    "max_context_tokens": 32,
    "batch_size": 64,
    "lm_layers": 2,
    "max_train_samples": 512,
    "max_eval_samples": 128,
    "patience": 1,
}


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
    clip_model: str = DEMO_CLIP_MODEL,
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
    settings: dict[str, dict] = {
        "crawl": {"allow_hosts": ["127.0.0.1"]},
        "summarize": {"limit": summarize_dialogues, "model_dir": summarize_model_dir},
        "embed": {"clip_model": clip_model},
        "train": {"config": DEMO_TRAIN_CONFIG | (train_config or {})},
    }
    stages = [s for s in stage_names() if (s != "summarize" or summarize_dialogues > 0) and (s != "train" or train)]
    with serve_directory(Path(workdir) / "posters", port=poster_port) as base_url:
        inputs = build_demo_inputs_task(workdir, items, synthetic_dialogues, use_redial, base_url)
        run = nightly_flow(
            lake=lake,
            dialogues=inputs["dialogues"],
            catalog=inputs["catalog"],
            catalog_source="movielens",
            stages=stages,
            settings=settings,
            artifacts_root=artifacts_root,
            lock_wait_s=lock_wait_s,
            force=force,
        )
    return DemoResult(inputs, run)
