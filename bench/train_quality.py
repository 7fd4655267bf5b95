"""Benchmark: graph-prompt recommender quality on ReDial against the baselines, 3 seeds, both protocols, ablations.

    .venv/bin/python -m bench.train_quality [--seeds 0 1 2] [--epochs 4] [--max-train N] [--lm-layers N]
        [--prompt-depth 1] [--context-tokens 64] [--variants full "without gating" ...] [--threads 1]
        [--select-on both|standard|no_repeats] [--explore-weight W]

The ReDial test dialogues (``../shared/data/redial/redial_test.jsonl``) are ingested into a temporary lake
and split 80/10/10 by dialogue per seed. The graphs stage is not part of this branch, so the bench builds
its inputs itself, clearly labelled in the output:
- ``co_mention`` / ``transition`` graphs: simple polars counts over the TRAINING dialogues of each seed only
  (no test leakage): items mentioned in the same dialogue / consecutive mentions;
- ``text`` item vectors: the packaged MiniLM over item titles; ``text_knn``: their 10 nearest neighbours.
There are no posters (no image graph) and no preference summaries for ReDial here, so the "without image
graph" and "without summaries" ablations equal the full model and are reported as not applicable.
Contenders per seed: the full model, "without text graph" (no text_knn, no text vectors, hence random id
init), "without gating" (plain mean fusion), "without graph pathway" (LM-pooled query only: no context-items
pathway and no raw co-occurrence signal), and the baselines (popularity, co-mention
item-kNN, text similarity). Results go to
``bench/out/train_quality.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import torch
import torch.nn.functional as F

import features
from features import CommitInfo
from tasks.ingest.dialogues import ingest_dialogues
from training.baselines import evaluate_baselines
from training.data import DataOptions, load_training_data
from training.lm import FrozenLM, load_lm
from training.metrics import PROTOCOLS, mean_std
from training.samples import split_dialogues
from training.train import TrainConfig, fit

REDIAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "redial" / "redial_test.jsonl"
COMMIT = CommitInfo(stage="bench_train_quality")
VARIANTS = {
    "full": {},
    "without text graph": {"graphs": ("co_mention", "transition"), "modalities": ()},
    "without gating": {"gating": False},
    "without graph pathway": {"graph_pathway": False, "cooccurrence": False},
}


def _edges(graph: str, pairs: pl.DataFrame) -> pl.DataFrame:
    counted = pairs.group_by("src", "dst").len("weight").sort("src", "weight", "dst", descending=[False, True, False])
    ranked = counted.with_columns(pl.col("dst").cum_count().over("src").cast(pl.Int32).alias("rank"))
    return ranked.with_columns(pl.lit(graph).alias("graph"), pl.col("weight").cast(pl.Float32))


def build_count_graphs(turns: pl.DataFrame, train_dialogues: set[str]) -> pl.DataFrame:
    """co_mention and transition edges from the training dialogues only (bench-built, not the graphs stage)."""
    mentions = (
        turns.filter(pl.col("dialogue_id").is_in(list(train_dialogues)))
        .sort("dialogue_id", "turn_idx")
        .explode("mentioned_item_ids")
        .drop_nulls("mentioned_item_ids")
        .select("dialogue_id", pl.col("mentioned_item_ids").alias("item"))
    )
    unique = mentions.unique(["dialogue_id", "item"])
    co = unique.join(unique, on="dialogue_id", suffix="_b").filter(pl.col("item") != pl.col("item_b"))
    co = co.select(pl.col("item").alias("src"), pl.col("item_b").alias("dst"))
    nxt = mentions.with_columns(pl.col("item").shift(-1).over("dialogue_id").alias("dst"))
    tr = nxt.filter(pl.col("dst").is_not_null() & (pl.col("item") != pl.col("dst"))).select(
        pl.col("item").alias("src"), "dst"
    )
    return pl.concat([_edges("co_mention", co), _edges("transition", tr)]).select(
        "graph", "src", "dst", "weight", "rank"
    )


def text_vectors(lake: str) -> tuple[list[str], torch.Tensor]:
    """MiniLM embeddings of every item's title (bench-built ``text`` modality)."""
    items = features.read("items", columns=["item_id", "title"], lake=lake).collect().sort("item_id")
    lm = load_lm()
    return items["item_id"].to_list(), lm.encode([t or i for i, t in items.iter_rows()], max_tokens=32)


def write_text_inputs(lake: str, ids: list[str], vectors: torch.Tensor, k: int = 10) -> None:
    """``item_embeddings`` (modality text) and a ``text_knn`` graph from the title vectors."""
    now = datetime.now(UTC)
    features.upsert(
        "item_embeddings",
        pl.DataFrame(
            {
                "item_id": ids,
                "modality": ["text"] * len(ids),
                "model_id": ["minilm-title"] * len(ids),
                "source_hash": ids,
                "dim": [vectors.shape[1]] * len(ids),
                "vector": vectors.tolist(),
                "computed_at": [now] * len(ids),
            },
            schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
        ),
        commit=COMMIT,
        lake=lake,
    )
    unit = F.normalize(vectors, dim=-1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-2)
    top = torch.topk(sims, k, dim=1)
    rows = [
        (ids[i], ids[int(j)], float(s), r + 1)
        for i in range(len(ids))
        for r, (s, j) in enumerate(zip(top.values[i], top.indices[i], strict=True))
    ]
    features.upsert(
        "item_graph_edges",
        pl.DataFrame(
            rows, schema={"src": pl.Utf8, "dst": pl.Utf8, "weight": pl.Float32, "rank": pl.Int32}, orient="row"
        ).with_columns(pl.lit("text_knn").alias("graph")),
        commit=COMMIT,
        lake=lake,
    )


def _row(name: str, runs: list[dict]) -> str:
    cells = []
    for protocol in PROTOCOLS:
        for metric in ("recall@1", "recall@10", "recall@50", "mrr@10", "ndcg@10"):
            mean, std = mean_std([r[protocol][metric] for r in runs])
            cells.append(f"{mean:.4f} ± {std:.4f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def table(results: dict[str, list[dict]]) -> str:
    """Markdown table: mean ± std over seeds, test split, both protocols."""
    metrics = ("R@1", "R@10", "R@50", "MRR@10", "NDCG@10")
    head = "| contender | " + " | ".join(f"{p} {m}" for p in ("std", "no-rep") for m in metrics) + " |"
    return "\n".join([head, "|---" * (1 + 2 * len(metrics)) + "|", *(_row(n, r) for n, r in results.items())])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--max-train", type=int, default=None, help="seeded training subset (default: all)")
    parser.add_argument("--lm-layers", type=int, default=None, help="cut the LM to N layers (default: all 6)")
    parser.add_argument("--prompt-depth", type=int, default=1, help="top LM layers that read the prompts")
    parser.add_argument("--context-tokens", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--file", type=Path, default=REDIAL)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--select-on",
        default="both",
        choices=["standard", "no_repeats", "both"],
        help="validation Recall@10 protocol(s) for early stopping",
    )
    parser.add_argument("--explore-weight", type=float, default=None, help="explore loss weight (default: model's)")
    return parser


def seed_lakes(
    args: argparse.Namespace,
    work: Path,
    base: str,
    turns: pl.DataFrame,
    text: tuple[list[str], torch.Tensor],
    results: dict[str, list[dict]],
) -> dict[int, str]:
    """Per seed, a copy of the base lake with that seed's count graphs and text inputs; the baselines' test
    metrics go into ``results``."""
    lakes: dict[int, str] = {}
    for seed in args.seeds:
        lakes[seed] = lake = str(work / f"seed{seed}")
        shutil.copytree(base, lake)
        split = split_dialogues(turns["dialogue_id"].to_list(), seed=seed)
        features.upsert("item_graph_edges", build_count_graphs(turns, set(split.train)), commit=COMMIT, lake=lake)
        write_text_inputs(lake, *text)
        baselines, _ = evaluate_baselines(load_training_data(DataOptions(seed=seed), lake=lake), "test")
        for name, metrics in baselines.items():
            results.setdefault(f"baseline: {name}", []).append(metrics)
    return lakes


def _train_config(args: argparse.Namespace, variant: str, seed: int) -> TrainConfig:
    extra = {} if args.explore_weight is None else {"explore_weight": args.explore_weight}
    return TrainConfig(
        seed=seed,
        epochs=args.epochs,
        max_train_samples=args.max_train,
        lm_layers=args.lm_layers,
        prompt_depth=args.prompt_depth,
        batch_size=64,
        max_context_tokens=args.context_tokens,
        progress=False,
        patience=args.patience,
        select_on=args.select_on,
        **VARIANTS[variant],
        **extra,
    )


def fit_variant(args: argparse.Namespace, variant: str, seed: int, lake: str, lm: FrozenLM) -> tuple[dict, dict]:
    """Train one variant on one seed's lake: its test metrics and its timings (and a line on stdout)."""
    config = _train_config(args, variant, seed)
    run_data = load_training_data(DataOptions(seed=seed, graphs=config.graphs, modalities=config.modalities), lake=lake)
    started = time.perf_counter()
    result = fit(run_data, config, lm=lm)
    timing = {
        "seed": seed,
        "variant": variant,
        **result.timings,
        "best_epoch": result.best_epoch,
        "wall_s": time.perf_counter() - started,
        "n_train": len(run_data.samples["train"]),
    }
    test = result.metrics["test"]
    print(
        f"seed {seed} {variant}: test R@10/R@50 std {test['standard']['recall@10']:.4f}/"
        f"{test['standard']['recall@50']:.4f} no-rep {test['no_repeats']['recall@10']:.4f}/"
        f"{test['no_repeats']['recall@50']:.4f} ({time.perf_counter() - started:.0f} s, best epoch "
        f"{result.best_epoch}, {result.timings})",
        flush=True,
    )
    return test, timing


def _write(path: Path, args: argparse.Namespace, results: dict[str, list[dict]], timings: list[dict]) -> None:
    path.write_text(
        json.dumps(
            {
                "args": vars(args) | {"file": str(args.file)},
                "results": results,
                "timings": timings,
                "machine": platform.platform(),
            },
            indent=2,
            default=str,
        )
    )


def main() -> None:
    """Command line entry point: baselines and every variant on every seed; the table on stdout."""
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    base = str(work / "base")
    ingest_dialogues(args.file, lake=base)
    text = text_vectors(base)
    turns = features.read("turns", lake=base).collect()
    lm = load_lm(layers_kept=args.lm_layers)  # shared: its cached lower-layer states serve every run
    results: dict[str, list[dict]] = {}
    timings: list[dict] = []
    out = Path("bench/out")
    out.mkdir(parents=True, exist_ok=True)
    lakes = seed_lakes(args, work, base, turns, text, results)  # every seed's inputs and baselines first
    for variant in args.variants:  # then the full model on every seed, then each ablation (partial runs still say much)
        for seed in args.seeds:
            test, timing = fit_variant(args, variant, seed, lakes[seed], lm)
            results.setdefault(f"model: {variant}", []).append(test)
            timings.append(timing)
            _write(out / "train_quality.json", args, results, timings)
    print(table(results))
    print(json.dumps(timings, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
