"""Benchmark: dialogue ingest of the ReDial file against a plain baseline, side by side in one run.

    .venv/bin/python -m bench.ingest_dialogues [--repeats 3] [--file PATH]

Measures, alternating the contenders in each repeat (the machine is shared and noisy, so ratios from
one run are what counts):
- ``mmcrs``: ``tasks.ingest.dialogues.ingest_dialogues`` into an empty lake (parse, validate, link, and
  three Delta commits: items, turns, dialogues);
- ``baseline``: json lines -> pandas (one row per message) -> one Parquet file, no validation;
- ``no-op``: re-ingesting the same file into the now-full lake (must write nothing): once as a nightly
  run does it (an identical earlier run is found in ``pipeline_runs``), once with ``force=True`` (the
  file is parsed, linked and compared with the lake again).
Uses ``../shared/data/redial/redial_test.jsonl`` when present, else synthetic MovieLens dialogues.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl

import features
from tasks.demo.stage import find_redial
from tasks.demo.synthetic import synthesize_dialogues
from tasks.ingest.dialogues import ingest_dialogues


def baseline(path: Path, out: Path) -> int:
    """Json lines -> pandas, one row per message -> one Parquet file. Returns the dialogue count."""
    frame = pd.read_json(path, lines=True, dtype=False)
    messages = frame[["conversationId", "messages"]].explode("messages", ignore_index=True)
    flat = pd.json_normalize(messages["messages"].tolist())
    flat.insert(0, "conversationId", messages["conversationId"].astype(str).to_numpy())
    flat.to_parquet(out / "turns.parquet", index=False)
    return len(frame)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(path: Path, repeats: int) -> dict[str, object]:
    """Time the contenders ``repeats`` times, alternating; return medians and ratios."""
    n_dialogues = sum(1 for line in path.open("rb") if line.strip())
    times: dict[str, list[float]] = {"mmcrs": [], "baseline": [], "noop": [], "noop_forced": []}
    for _ in range(repeats):
        work = Path(tempfile.mkdtemp(prefix="mmcrs-bench-"))
        try:
            times["baseline"].append(_timed(lambda w=work: baseline(path, w)))
            times["mmcrs"].append(_timed(lambda w=work: ingest_dialogues(path, lake=w / "lake")))
            before = features.tables(lake=work / "lake").select("table", "version")
            times["noop"].append(_timed(lambda w=work: ingest_dialogues(path, lake=w / "lake")))
            assert features.tables(lake=work / "lake").select("table", "version").equals(before), "no-op wrote data"
            times["noop_forced"].append(_timed(lambda w=work: ingest_dialogues(path, lake=w / "lake", force=True)))
            after = features.tables(lake=work / "lake").filter(pl.col("table") != "pipeline_runs")
            assert after.select("table", "version").equals(before.filter(pl.col("table") != "pipeline_runs"))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "file": str(path),
        "dialogues": n_dialogues,
        "repeats": repeats,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "dialogues_per_s": {k: round(n_dialogues / med[k]) for k in ("mmcrs", "baseline")},
        "mmcrs_over_baseline_time": round(med["mmcrs"] / med["baseline"], 2),
        "noop_fraction_of_first": round(med["noop"] / med["mmcrs"], 3),
        "forced_noop_fraction_of_first": round(med["noop_forced"] / med["mmcrs"], 3),
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def main() -> None:
    """Command line entry point: prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--file", type=Path, default=None)
    args = parser.parse_args()
    path = args.file or find_redial()
    if path is None:
        path = synthesize_dialogues(out_path=Path(tempfile.mkdtemp()) / "synthetic.jsonl", n_dialogues=1342)
    print(json.dumps(run(path, args.repeats), indent=2))


if __name__ == "__main__":
    main()
