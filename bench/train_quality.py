"""Benchmark: graph-prompt recommender quality on ReDial over the full catalog, against the baselines, 3 seeds,
both label protocols, cold targets and ablations.

    .venv/bin/python -m bench.train_quality [--seeds 0 1 2] [--epochs 2] [--max-train N] [--lm-layers N]
        [--context-tokens 32] [--variants full "without gating" ...] [--threads 1] [--summaries PATH] [--data DIR]

Inputs are built the way the product builds them, into two temporary lakes:
- ``meta``: ``mmcrs ingest`` of the ReDial movie list (``movies_with_mentions.csv``, ``--format redial-movies``:
  all 6,924 movies, ids matching the mentions) enriched from the CC0 ``movies.db`` (``enrich_with =
  "bokeh-movies"``), then the ReDial dialogues (``redial_test.jsonl``); ``embed --modality text`` (the packaged
  MiniLM over the enriched item text: title, year, genres, people, country, language); ``graphs`` (``text_knn``,
  ``co_mention``, ``transition``; training recounts the dialogue graphs from each seed's training dialogues);
- ``titles``: the same without enrichment (item text = "Title (Year)"): the "without text metadata" ablation.
``--summaries PATH`` loads a parquet of ``preference_summaries`` rows into both lakes (the model reads them).
Every seed splits the dialogues 80/10/10; every contender of a seed sees the same split and ranks every item.
Baselines (popularity, co-mention item-kNN, tuned item-kNN, EASE, text similarity) read no labels, so their
serving-time and oracle-labels numbers are the same. The model's "serving" numbers are ``metrics["test"]``
(what ``recommend()`` sees: no labels; a sentiment head, when on, predicts them); "oracle" are
``metrics["test_oracle_labels"]``.
Cold targets: test samples whose target no training dialogue of that seed mentions. Results go to
``bench/out/train_quality.json``, the tables to stdout (``bench.train_quality_tables`` re-renders them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
import torch

import features
from bench.train_quality_tables import render
from features import CommitInfo
from tasks.embed.config import EmbedConfig
from tasks.embed.stage import embed
from tasks.graphs.stage import GraphsConfig, build_graphs
from tasks.ingest.config import IngestSettings
from tasks.ingest.stage import ingest
from training.baselines import evaluate_baselines, tune_baselines
from training.data import DataOptions, TrainingData, load_training_data
from training.lm import FrozenLM, load_lm
from training.train import TrainConfig, evaluate_model, fit, summary_vectors

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "redial"
COMMIT = CommitInfo(stage="bench_train_quality")
GRAPHS = ("text_knn", "co_mention", "transition")
VARIANTS: dict[str, dict] = {
    "full": {},
    "without text metadata": {"lake": "titles"},
    "without text_knn": {"graphs": ("co_mention", "transition")},
    "without co_mention": {"graphs": ("text_knn", "transition")},
    "without transition": {"graphs": ("text_knn", "co_mention")},
    "without summaries": {"use_summary": False},
    "without LM pathway": {"lm_pathway": False},
    "without gating": {"gating": False},
    "with sentiment head": {"sentiment_head": True},
}


def build_lake(root: Path, *, data: Path, enrich: bool, summaries: Path | None) -> dict:
    """Ingest (enriched or not), embed the text modality and build the graphs into ``root``, as the product's
    stages do; load ``summaries`` into ``preference_summaries``. Returns the ingest match report (or {})."""
    lake = features.resolve_lake(str(root))
    settings = IngestSettings(
        catalog=str(data / "movies_with_mentions.csv"),
        catalog_format="redial-movies",
        dialogues=str(data / "redial_test.jsonl"),
        enrich_with="bokeh-movies" if enrich else None,
    )
    report = ingest(settings, lake=lake).enrichment or {}
    embed(lake=lake, config=EmbedConfig(modalities=("text",), num_workers=0, device="cpu"))
    build_graphs(lake=lake, config=GraphsConfig(graphs=GRAPHS, device="cpu"))
    if summaries is not None:
        features.upsert("preference_summaries", pl.read_parquet(summaries), commit=COMMIT, lake=lake)
    return report


def cold_data(data: TrainingData) -> TrainingData:
    """``data`` with only the test samples whose target no training dialogue mentions (cold targets)."""
    warm = {i for s in data.samples["train"] for i in (*s.context_items, s.target)}
    cold = [s for s in data.samples["test"] if s.target not in warm]
    return dataclasses.replace(data, samples=data.samples | {"test": cold})


def baseline_results(data: TrainingData) -> dict[str, dict]:
    """Per baseline: test metrics (both protocols; the same for both label protocols), cold-target metrics and
    the tuned hyperparameters."""
    params = tune_baselines(data)
    test, _ = evaluate_baselines(data, "test", params=params)
    cold, _ = evaluate_baselines(cold_data(data), "test", params=params)
    return {
        name: {"serving": metrics, "oracle": metrics, "cold": cold[name], "params": params.get(name, {})}
        for name, metrics in test.items()
    }


def train_config(args: argparse.Namespace, variant: str, seed: int) -> TrainConfig:
    """The run's config: the bench's scale knobs and the variant's switches."""
    knobs = {k: v for k, v in VARIANTS[variant].items() if k != "lake"}
    return TrainConfig(
        seed=seed,
        epochs=args.epochs,
        max_train_samples=args.max_train,
        lm_layers=args.lm_layers,
        batch_size=64,
        max_context_tokens=args.context_tokens,
        progress=False,
        patience=args.patience,
        **knobs,
    )


def fit_variant(args: argparse.Namespace, variant: str, seed: int, lakes: dict[str, str], lm: FrozenLM) -> dict:
    """Train one variant on one seed: serving / oracle / cold test metrics, valid metrics, sentiment accuracy
    and timings (and a line on stdout)."""
    config = train_config(args, variant, seed)
    lake = lakes[VARIANTS[variant].get("lake", "meta")]
    data = load_training_data(DataOptions(seed=seed, graphs=config.graphs), lake=lake)
    started = time.perf_counter()
    result = fit(data, config, lm=lm)
    cold = cold_data(data).samples["test"]
    vectors = summary_vectors(lm, data)
    out = {
        "serving": result.metrics["test"],
        "oracle": result.metrics["test_oracle_labels"],
        "cold": evaluate_model(result.model, cold, index=data.index, summaries=vectors),
        "valid": result.metrics["valid"],
        "sentiment": result.metrics.get("test_sentiment", {}).get("labels", {}),
        "timings": result.timings | {"best_epoch": result.best_epoch, "wall_s": time.perf_counter() - started},
        "n_train": len(data.samples["train"]),
        "skipped": data.skipped,
    }
    serving = out["serving"]["no_repeats"]
    print(
        f"seed {seed} {variant}: serving no-rep R@10/R@50 {serving['recall@10']:.4f}/{serving['recall@50']:.4f} "
        f"({out['timings']['wall_s']:.0f} s, best epoch {result.best_epoch})",
        flush=True,
    )
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--max-train", type=int, default=None, help="seeded training subset (default: all)")
    parser.add_argument("--lm-layers", type=int, default=None, help="cut the LM to N layers (default: all 6)")
    parser.add_argument("--context-tokens", type=int, default=32)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the ReDial files (../shared/data/redial)")
    parser.add_argument("--summaries", type=Path, default=None, help="parquet of preference_summaries rows")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("bench/out/train_quality.json"))
    return parser


def _variants(args: argparse.Namespace) -> list[str]:
    """The variants to run: "without summaries" only with ``--summaries`` (without them it is the full model)."""
    return [v for v in args.variants if v != "without summaries" or args.summaries is not None]


def _save(args: argparse.Namespace, record: dict) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, **record}
    args.out.write_text(json.dumps(payload | {"machine": platform.platform()}, indent=1, default=str))


def main() -> None:
    """Command line entry point: inputs, baselines per seed, then every variant on every seed; tables on stdout."""
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    record: dict = {"baselines": {}, "models": {}, "started": time.time()}
    record["match_report"] = build_lake(work / "meta", data=args.data, enrich=True, summaries=args.summaries)
    if "without text metadata" in args.variants:
        build_lake(work / "titles", data=args.data, enrich=False, summaries=args.summaries)
    lakes = {"meta": str(work / "meta"), "titles": str(work / "titles")}
    for seed in args.seeds:
        data = load_training_data(DataOptions(seed=seed), lake=lakes["meta"])
        record["baselines"][seed] = baseline_results(data)
        record.setdefault("n_items", len(data.item_ids))
        _save(args, record)
    lm = load_lm(layers_kept=args.lm_layers)  # shared: its cached text states serve every run
    for variant in _variants(args):
        for seed in args.seeds:
            record["models"].setdefault(variant, {})[seed] = fit_variant(args, variant, seed, lakes, lm)
            _save(args, record)
    record["wall_s"] = time.time() - record["started"]
    _save(args, record)
    print(render(json.loads(args.out.read_text())))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
