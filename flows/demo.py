"""The demo flow: build demo inputs from packaged real data, then run the pipeline as far as it exists."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.crawl import crawl_flow
from flows.embed import embed_flow
from flows.graphs import graphs_flow
from flows.ingest import ingest_flow
from flows.summarize import summarize_flow
from flows.train import train_flow
from tasks.demo.server import DEFAULT_PORT, serve_directory
from tasks.demo.stage import build_demo_inputs_task

DEMO_CLIP_MODEL = "random:mmcrs-tiny@0"
# Small enough for about a minute or two on a laptop CPU: the real MiniLM cut to 2 layers, short contexts,
# 2 epochs over a seeded subset of 512 training samples (final metrics still use every valid/test sample).
DEMO_TRAIN_CONFIG: dict[str, object] = {"epochs": 2, "max_context_tokens": 32, "batch_size": 64, "lm_layers": 2,
                                        "max_train_samples": 512, "max_eval_samples": 128, "patience": 1}


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
) -> dict[str, object]:
    """Demo catalog (MovieLens-100K + CC0 movie database, rendered posters served from 127.0.0.1),
    dialogues, then ingest -> crawl -> summarize -> embed -> graphs -> train.

    ``summarize_dialogues``: a sample of dialogues to summarise (a CPU summarises about one a second; 0 skips
    the stage); ``summarize_model_dir``: a local model folder instead of SmolLM2; ``train``: run the (small)
    train step, which skips inputs absent from the lake with the reason.
    """
    with serve_directory(Path(workdir) / "posters", port=poster_port) as base_url:
        inputs = build_demo_inputs_task(workdir, items, synthetic_dialogues, use_redial, base_url)
        ingested = ingest_flow(
            dialogues=inputs["dialogues"], catalog=inputs["catalog"], catalog_source="movielens", lake=lake
        )
        crawled = crawl_flow(lake=lake, allow_hosts=["127.0.0.1"])
    summarized = summarize_flow(lake=lake, limit=summarize_dialogues,
                                model_dir=summarize_model_dir) if summarize_dialogues > 0 else {}
    # No CLIP weights exist offline: the demo's image/clip_text vectors come from a seeded random tiny
    # open_clip model (announced in the log and the summary); text vectors from the packaged MiniLM.
    embedded = embed_flow(lake=lake, clip_model=clip_model)
    built = graphs_flow(lake=lake)
    trained = (train_flow(lake=lake, config=DEMO_TRAIN_CONFIG | (train_config or {}), artifacts_root=artifacts_root)
               if train else None)
    return {"inputs": inputs, "ingest": ingested, "crawl": crawled, "summarize": summarized, "embed": embedded,
            "graphs": built, "train": trained}
