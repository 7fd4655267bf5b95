"""Benchmark: dialogue ingest of the ReDial file against a plain baseline, side by side in one run.

    .venv/bin/python -m bench.ingest_dialogues [--repeats 3] [--file PATH]

Measures, alternating the contenders in each repeat (the machine is shared and noisy, so ratios from
one run are what counts), wall time and the process's CPU time (``time.process_time``, all threads):
- ``baseline``: json lines -> pandas (one row per message) -> one Parquet file, no validation;
- ``mmcrs``: ``tasks.ingest.dialogues.ingest_dialogues`` into an empty lake (parse, validate, link, and
  three Delta commits: items, turns, dialogues);
- ``rerun``: ingesting the same file again into the now-full lake: parsed, linked and compared with the
  lake, it must write no table version (asserted). A nightly run does not even read an unchanged file (the
  stage runner skips it, see ``bench/nightly.py``).
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


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _one_repeat(path: Path) -> dict[str, tuple[float, float]]:
    work = Path(tempfile.mkdtemp(prefix="mmcrs-bench-"))
    try:
        out = {"baseline": _timed(lambda: baseline(path, work))}
        out["mmcrs"] = _timed(lambda: ingest_dialogues(path, lake=work / "lake"))
        before = features.tables(lake=work / "lake").select("table", "version")
        out["rerun"] = _timed(lambda: ingest_dialogues(path, lake=work / "lake"))
        assert features.tables(lake=work / "lake").select("table", "version").equals(before), "re-ingest wrote data"
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(path: Path, repeats: int) -> dict[str, object]:
    """Time the contenders ``repeats`` times, alternating; return medians and ratios."""
    n_dialogues = sum(1 for line in path.open("rb") if line.strip())
    _one_repeat(path)  # warm-up: imports, first Delta table creation
    runs = [_one_repeat(path) for _ in range(repeats)]
    wall = {k: statistics.median(r[k][0] for r in runs) for k in runs[0]}
    cpu = {k: statistics.median(r[k][1] for r in runs) for k in runs[0]}
    return {
        "file": str(path),
        "dialogues": n_dialogues,
        "repeats": repeats,
        "median_wall_s": {k: round(v, 3) for k, v in wall.items()},
        "median_cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "dialogues_per_s": {k: round(n_dialogues / wall[k]) for k in ("mmcrs", "baseline")},
        "mmcrs_over_baseline_time": round(wall["mmcrs"] / wall["baseline"], 2),
        "mmcrs_over_baseline_cpu": round(cpu["mmcrs"] / cpu["baseline"], 2),
        "rerun_fraction_of_first": round(wall["rerun"] / wall["mmcrs"], 3),
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
