"""Benchmark: the full demo run against a nightly run with nothing new, on a local lake and on an S3 lake.

    .venv/bin/python -m bench.nightly [--items N] [--summarize 4] [--lakes local s3]

Side by side in one run, for each lake, each command as its own process exactly as a user runs it:
1. ``full``: ``mmcrs demo`` into a fresh lake (every stage does its work);
2. ``noop_run``: ``mmcrs run`` on that lake afterwards — the nightly command; the demo stored its settings in
   the lake, so every stage is up to date and the command answers from the plan without starting Prefect;
3. ``noop_demo``: ``mmcrs demo`` again (through Prefect's ephemeral server: every stage skips inside the flow).
The S3 lake lives on moto's S3 server on 127.0.0.1 (started here). Target: ``noop_run`` <= 5 % of
``full``, under 10 s, and no table version written by either no-op. Prints one JSON object; raw numbers go to
bench/out/nightly.json.
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

from bench.s3 import s3_lake

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _mmcrs(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "mmcrs"), *args], cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mmcrs {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def _versions(lake: str, options: dict[str, str]) -> dict[str, int]:
    import features

    return features.table_versions(sorted(features.TABLES), lake=features.Lake(lake, options))


def _measure(lake: str, options: dict[str, str], root: Path, items: int | None, summarize: int) -> dict:
    """full demo, then the two no-ops, each a fresh process on this lake."""
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect-home"), "MMCRS_STORAGE_OPTIONS": json.dumps(options)}
    env.pop("MMCRS_ARTIFACTS", None)  # models live with the lake
    demo = ["demo", "--lake", lake, "--workdir", str(root / "demo"), "--summarize-dialogues", str(summarize)]
    demo += ["--items", str(items)] if items else []
    full = _mmcrs(demo, env)
    versions = _versions(lake, options)
    noop_run = _mmcrs(["run", "--lake", lake], env)
    noop_demo = _mmcrs(demo, env)
    return {
        "full_s": round(full, 2),
        "noop_run_s": round(noop_run, 2),
        "noop_demo_s": round(noop_demo, 2),
        "noop_run_share_of_full": round(noop_run / full, 4),
        "noop_demo_share_of_full": round(noop_demo / full, 4),
        "noops_wrote_no_version": _versions(lake, options) == versions,
        "targets": {"noop_run_le_5pct": noop_run / full <= 0.05, "noop_run_under_10s": noop_run < 10},
    }


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=None, help="limit the demo catalog (default: all)")
    parser.add_argument("--summarize", type=int, default=4, help="dialogues the demo summarises")
    parser.add_argument("--lakes", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    args = parser.parse_args()
    out: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load_before": os.getloadavg(),
        "items": args.items or "all",
        "summarize_dialogues": args.summarize,
    }
    for kind in args.lakes:
        root = Path(tempfile.mkdtemp(prefix=f"mmcrs-bench-nightly-{kind}-"))
        if kind == "local":
            out[kind] = _measure(str(root / "lake"), {}, root, args.items, args.summarize)
        else:
            with s3_lake() as (lake, options):
                out[kind] = _measure(lake, options, root, args.items, args.summarize)
    out["load_after"] = os.getloadavg()
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "nightly.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
