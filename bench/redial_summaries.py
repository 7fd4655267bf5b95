"""Benchmark: preference summaries for the shared ReDial split, generated once into a persistent bench lake.

    .venv/bin/python -m bench.redial_summaries [--dialogues N] [--out bench/out/redial_summaries.parquet]
        [--lake bench/out/redial_summaries_lake] [--chunk-size 8] [--max-new-tokens 40] [--batch 32]
        [--commit-dialogues 16] [--threads 2] [--labels]

The ReDial test dialogues (``../shared/data/redial/redial_test.jsonl``) and the ReDial movie catalog
(``movies_with_mentions.csv``, format ``redial-movies``) are ingested into ``--lake`` by the ingest stage's own
code, once (the dialogue ids are the ingest's). The real summarize stage (``summarize_preferences`` with the local
SmolLM2-135M-Instruct backend) then writes one ``preference_summaries`` row per recommendation point of the first
``--dialogues`` dialogues (all by default), committing every ``--commit-dialogues`` dialogues. A row is keyed by its
prompt hash, so a re-run (or a run after a kill) generates only what the lake does not hold yet: the stage's own
skip-by-prompt-hash is the cache. Finally the lake's rows of this model are exported to ``--out`` (the columns of
``preference_summaries``; one lake per settings: where another run's settings wrote a row for the same point, the
latest is kept), and the run's counts, rate and settings to ``<out>.json``.

Prompts carry no questionnaire labels by default (``--labels`` adds ReDial's liked / seen answers): a summary
is a model input at serving time, where those labels do not exist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import torch

import features
from features import Lake
from tasks.ingest.config import IngestSettings
from tasks.ingest.stage import ingest
from tasks.summarize.backends.factory import BackendSpec, create_backend
from tasks.summarize.preferences import SOURCE, summarize_preferences
from tasks.summarize.stage import RunOptions, SummarizeConfig, SummarizeSummary
from training.samples import build_samples

COLUMNS = ["dialogue_id", "upto_turn", "model_id", "prompt_hash", "summary", "generated_at"]
OUT = Path(__file__).resolve().parent / "out"


def redial_dir() -> Path:
    """The shared ReDial folder: ``shared/data/redial`` beside the first folder above this checkout that has one."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "redial"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "redial"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=None, help="first N dialogues with a recommendation")
    parser.add_argument("--file", type=Path, default=redial_dir() / "redial_test.jsonl")
    parser.add_argument("--catalog", type=Path, default=redial_dir() / "movies_with_mentions.csv")
    parser.add_argument("--lake", type=Path, default=OUT / "redial_summaries_lake")
    parser.add_argument("--out", type=Path, default=OUT / "redial_summaries.parquet")
    parser.add_argument("--chunk-size", type=int, default=8, help="history items per recurrent step")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32, help="prompts per generate call")
    parser.add_argument("--commit-dialogues", type=int, default=16, help="dialogues per batch (one commit each)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--labels", action="store_true", help="show ReDial's questionnaire liked/seen labels")
    parser.add_argument("--template", default="preference_v2")
    parser.add_argument(
        "--final-points", action="store_true", help="also each dialogue's last point (no training sample reads it)"
    )
    return parser


def ensure_ingested(lake: Lake, *, dialogues: Path, catalog: Path) -> dict[str, object]:
    """Ingest the catalog and the dialogues into ``lake`` unless its ``turns`` table exists; the ingest's counts."""
    if features.table_version("turns", lake=lake) is not None:
        return {"ingest": "already in the lake"}
    settings = IngestSettings(dialogues=str(dialogues), catalog=str(catalog), catalog_format="redial-movies")
    return ingest(settings, lake=lake).inputs


def export(lake: Lake, *, model_id: str, out: Path) -> tuple[pl.DataFrame, int]:
    """The lake's summaries of ``model_id`` to ``out``, one per (dialogue_id, upto_turn): the latest where runs with
    other settings (another prompt hash) wrote one too; (the rows, how many older rows were left out)."""
    rows = features.read("preference_summaries", columns=COLUMNS, missing="empty", lake=lake)
    mine = rows.filter(pl.col("model_id") == model_id).collect()
    latest = mine.sort("generated_at").unique(["dialogue_id", "upto_turn"], keep="last")
    latest = latest.sort("dialogue_id", "upto_turn")
    out.parent.mkdir(parents=True, exist_ok=True)
    latest.write_parquet(out)
    return latest, mine.height - latest.height


def _progress(started: float, log_every: float = 30.0) -> object:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= log_every or done == total:
            last[0] = now
            print(f"[{now - started:7.0f}s] {done}/{total} dialogues", flush=True)

    return report


def coverage(lake: Lake, summaries: pl.DataFrame) -> dict[str, int]:
    """Recommendation samples (training's, one per recommended item) and how many read one of ``summaries``."""
    columns = ["dialogue_id", "turn_idx", "role", "text", "mentioned_item_ids", "liked"]
    turns = features.read("turns", columns=columns, lake=lake).collect()
    samples = build_samples(turns, summaries=summaries)
    return {"samples": len(samples), "samples_with_summary": sum(s.summary is not None for s in samples)}


def quarantined(lake: Lake, *, model_id: str) -> int:
    """Preference rows of ``model_id`` in the quarantine (answers that failed their checks; never retried)."""
    rows = features.read("quarantine", columns=["source", "record_key"], missing="empty", lake=lake)
    keys = rows.filter(pl.col("source") == SOURCE).collect()["record_key"]
    return sum(f"|{model_id}|" in k for k in keys)


def run(args: argparse.Namespace) -> tuple[SummarizeSummary, dict[str, object]]:
    """Ingest if needed, then the summarize stage over the chosen dialogues; (its summary, the ingest counts)."""
    torch.set_num_threads(args.threads)
    lake = features.resolve_lake(str(args.lake))
    ingested = ensure_ingested(lake, dialogues=args.file, catalog=args.catalog)
    backend = create_backend(BackendSpec(batch_size=args.batch))
    config = SummarizeConfig(
        chunk_size=args.chunk_size,
        max_new_tokens=args.max_new_tokens,
        batch=args.commit_dialogues,
        preference_template=args.template,
        labels=args.labels,
        final_points=args.final_points,
    )
    options = RunOptions(progress=_progress(time.perf_counter()))  # type: ignore[arg-type]
    summary = summarize_preferences(backend=backend, lake=lake, config=config, limit=args.dialogues, options=options)
    return summary, ingested


def main() -> None:
    """Command line entry point: generate what the lake lacks, export, and write the run's record."""
    args = _parser().parse_args()
    start_load, started_at = os.getloadavg(), datetime.now(UTC)
    summary, ingested = run(args)
    lake = features.resolve_lake(str(args.lake))
    exported, superseded = export(lake, model_id=summary.model_id, out=args.out)
    record = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "started": started_at.isoformat(timespec="seconds"),
        "load_start": start_load,
        "load_end": os.getloadavg(),
        "ingest": ingested,
        "summary": summary.to_dict(),
        "steps_per_s": summary.generated / summary.elapsed_s if summary.elapsed_s else None,
        "rows_per_s": summary.written / summary.elapsed_s if summary.elapsed_s else None,
        "exported_rows": exported.height,
        "exported_dialogues": exported["dialogue_id"].n_unique(),
        "superseded_rows": superseded,
        **coverage(lake, exported),
        "quarantined_total": quarantined(lake, model_id=summary.model_id),
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str))
    shown = {k: v for k, v in record.items() if k not in ("summary", "ingest")}
    print(json.dumps(shown, indent=2, default=str))
    s = summary
    print(
        f"dialogues {s.dialogues}/{s.dialogues_total}, candidates {s.candidates}, cached {s.cached}, generated "
        f"{s.generated} steps, written {s.written}, quarantined {s.quarantined} {s.quarantine_reasons}, "
        f"no history {s.no_history}, {s.elapsed_s:.0f} s"
    )


if __name__ == "__main__":
    main()
