"""Benchmark: the full demo nightly run against the same run with nothing changed.

    .venv/bin/python -m bench.nightly [--items N] [--summarize 4]

Side by side in one run, on a fresh temporary lake, each as its own process exactly as a user runs it
(`mmcrs demo`: Python start, imports, Prefect's ephemeral server, demo inputs, then the nightly DAG):
1. ``full``: the first run (every stage does its work);
2. ``noop``: the same command again (nothing new: every stage must skip);
3. ``noop_in_process``: the nightly flow called again inside one warm process (no interpreter or server
   start), which is what a long-lived worker pays.
Targets (issue 8): noop <= 5 % of full, and under 30 s. Also checks that the no-op wrote no table version.
Prints one JSON object; raw numbers go to bench/out/nightly.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _versions(lake: Path) -> dict[str, int]:
    import features

    return features.table_versions(sorted(features.TABLES), lake=lake)


def _demo(lake: Path, workdir: Path, items: int | None, summarize: int, home: Path) -> float:
    cmd = [
        str(Path(sys.executable).parent / "mmcrs"),
        "demo",
        "--lake",
        str(lake),
        "--workdir",
        str(workdir),
        "--summarize-dialogues",
        str(summarize),
    ]
    if items:
        cmd += ["--items", str(items)]
    env = {**os.environ, "PREFECT_HOME": str(home), "MMCRS_ARTIFACTS": str(lake.parent / "artifacts")}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mmcrs demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def _in_process(lake: Path, workdir: Path, items: int | None, summarize: int) -> tuple[float, float]:
    """Two no-op demo runs in one process: (first call incl. server start, second call warm)."""
    from flows import env

    env.configure()
    from flows.demo import demo_flow

    times = []
    for _ in range(2):
        started = time.perf_counter()
        result = demo_flow(lake=str(lake), workdir=str(workdir), items=items, summarize_dialogues=summarize)
        times.append(time.perf_counter() - started)
        assert all(s["status"] == "skipped" for s in result.run.stages.values()), result.run.stages
    return times[0], times[1]


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=None, help="limit the demo catalog (default: all)")
    parser.add_argument("--summarize", type=int, default=4, help="dialogues the demo summarises")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mmcrs-bench-nightly-"))
    lake, workdir, home = root / "lake", root / "demo", root / "prefect-home"
    load_before = os.getloadavg()
    full = _demo(lake, workdir, args.items, args.summarize, home)
    versions = _versions(lake)
    noop = _demo(lake, workdir, args.items, args.summarize, home)
    unchanged = _versions(lake) == versions
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["MMCRS_ARTIFACTS"] = str(lake.parent / "artifacts")  # as the `mmcrs demo` runs above had it
    cold, warm = _in_process(lake, workdir, args.items, args.summarize)
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "items": args.items or "all",
        "summarize_dialogues": args.summarize,
        "full_s": round(full, 2),
        "noop_s": round(noop, 2),
        "noop_share_of_full": round(noop / full, 4),
        "noop_in_process_first_s": round(cold, 2),
        "noop_in_process_warm_s": round(warm, 2),
        "noop_wrote_no_version": unchanged,
        "targets": {"noop_share_le_5pct": noop / full <= 0.05, "noop_under_30s": noop < 30},
    }
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "nightly.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
