"""Benchmark: the embedding stage on a Dask ``LocalCluster`` (Prefect ``DaskTaskRunner``) against the default
in-process runner, side by side in one run.

    PYTHONPATH=. .venv/bin/python -m bench.dask_embed [--items 256] [--workers 2] [--shard-size 32] [--s3]

Two identical temporary lakes of ``--items`` items (generated 300x450 PNG posters + texts); the ``embed`` flow
with modalities image + clip_text (``--model``, default random ViT-B-32: real compute, no meaning) and text
(packaged MiniLM) runs on one with ``task_runner="default"`` and on the other with ``task_runner="dask"``
against a ``LocalCluster`` of ``--workers`` single-threaded processes started here (its start-up is timed
apart, and a warm-up run on a small third lake loads the models on the workers first, as a long-lived
production cluster would have them). Reported: the stage's wall time (planning, encoding, every shard's
commit) per runner and their ratio, per-modality items/s of wall time and, for Dask, items/s per worker
(items / summed worker encode seconds), plus ``uptime`` before and after (the machine is shared).
With ``--s3`` the three lakes live on an object store instead of local folders: moto's S3 server on 127.0.0.1
(``bench.s3``), reached through ``MMCRS_STORAGE_OPTIONS`` by the flow and by every Dask worker, so posters
are read and vectors committed over HTTP, as with a cluster and an ``s3://`` lake.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import features


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _row(summary: dict[str, Any], wall_s: float) -> dict[str, object]:
    modalities = summary["modalities"]
    return {
        "flow_wall_s": round(wall_s, 1),
        "stage_s": summary["elapsed_s"],
        "embedded": sum(int(m["embedded"]) for m in modalities.values()),
        "items_per_s": {k: m["items_per_s"] for k, m in modalities.items()},
        "items_per_worker_s": {k: m["items_per_worker_s"] for k, m in modalities.items() if m["worker_seconds"]},
        "workers": len(summary.get("workers") or []) or 1,
        "model_loads": summary.get("model_loads", 0),
    }


def _embed_flow(lake: str, **settings: Any) -> tuple[dict[str, object], float]:
    """One ``embed`` stage run on ``lake``: its summary and its wall time."""
    from flows.nightly import run_one

    start = time.perf_counter()
    summary = run_one("embed", settings, lake=lake, force=True).summary
    assert summary is not None
    return summary.to_dict(), time.perf_counter() - start


def _on_cluster(workers: int, threads: str, options: dict[str, Any], *, warm_lake: str, lake: str) -> dict[str, Any]:
    """Start a ``LocalCluster``, warm its workers up on ``warm_lake``, then run on ``lake`` (each timed)."""
    from distributed import LocalCluster

    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if "MMCRS_STORAGE_OPTIONS" in os.environ:  # an object-store lake: the workers read and write it too
        env["MMCRS_STORAGE_OPTIONS"] = os.environ["MMCRS_STORAGE_OPTIONS"]
    start = time.perf_counter()
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        env=env,
    ) as cluster:
        cluster_s = time.perf_counter() - start
        dask = {"task_runner": "dask", "dask_address": cluster.scheduler_address, "dask_workers": workers}
        warm, warm_s = _embed_flow(warm_lake, **dask, **{**options, "shard_size": 2})
        scaled, wall_s = _embed_flow(lake, **dask, **options)
    return {
        "workers": workers,
        "cluster_s": cluster_s,
        "warm": warm,
        "warm_s": warm_s,
        "scaled": scaled,
        "wall_s": wall_s,
    }


def _report(
    n: int, options: dict[str, Any], threads: str, a: dict[str, object], dask: dict[str, Any], before: str
) -> dict[str, object]:
    """The printed numbers: both runners' rows (``a``: the default runner's), their ratio, the cluster's
    start-up and the machine."""
    b = _row(dask["scaled"], dask["wall_s"])
    return {
        "items": n,
        "modalities": options["modalities"],
        "clip_model": options["clip_model"],
        "text_model": "packaged MiniLM",
        "shard_size": options["shard_size"],
        "batch_size": options["batch_size"],
        "dask_workers": dask["workers"],
        "threads_per_worker_torch": int(threads),
        "default": a,
        "dask": b,
        "ratio_default_over_dask_stage_s": round(float(a["stage_s"]) / float(b["stage_s"]), 2),  # type: ignore[arg-type]
        "dask_cluster_start_s": round(dask["cluster_s"], 1),
        "dask_warmup_run_s": round(dask["warm_s"], 1),
        "dask_warmup_model_loads": dask["warm"].get("model_loads"),
        "uptime_before": before,
        "uptime_after": _uptime(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), python {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


@contextlib.contextmanager
def _lake_base(root: Path, s3: bool) -> Any:
    """Where the lakes go: ``root`` (local) or a bucket on moto's S3 server, its options in the environment."""
    if not s3:
        yield root
        return
    from bench.s3 import s3_lake

    with s3_lake("dask-bench") as (base, options):
        os.environ["MMCRS_STORAGE_OPTIONS"] = json.dumps(options)
        try:
            yield base
        finally:
            os.environ.pop("MMCRS_STORAGE_OPTIONS", None)


def run(n: int, workers: int, shard_size: int, model: str, batch: int, *, s3: bool = False) -> dict[str, object]:
    """Build the lakes (local, or on an S3 endpoint with ``s3``), run both runners, return the numbers."""
    root = Path(tempfile.mkdtemp(prefix="mmcrs-dask-bench-"))
    try:
        with _lake_base(root, s3) as base:
            return _compare(base, n, workers, shard_size, model, batch) | {
                "lake": "s3 (moto, 127.0.0.1)" if s3 else "local"
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _compare(base: Path | str, n: int, workers: int, shard_size: int, model: str, batch: int) -> dict[str, object]:
    from bench.embed import _lake

    before = _uptime()
    options: dict[str, Any] = {
        "modalities": ["image", "clip_text", "text"],
        "clip_model": model,
        "batch_size": batch,
        "shard_size": shard_size,
        "device": "cpu",
    }
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    under = (lambda name: base / name) if isinstance(base, Path) else (lambda name: f"{base}/{name}")
    plain_lake, _ = _lake(under("default"), n)
    dask_lake, _ = _lake(under("dask"), n)
    warm_lake, _ = _lake(under("warm"), 4 * workers)
    plain, plain_wall = _embed_flow(str(plain_lake), **options)
    dask = _on_cluster(workers, threads, options, warm_lake=str(warm_lake), lake=str(dask_lake))
    rows_a = features.read("item_embeddings", lake=plain_lake).collect().height
    rows_b = features.read("item_embeddings", lake=dask_lake).collect().height
    assert rows_a == rows_b == 3 * n, (rows_a, rows_b)
    return _report(n, options, threads, _row(plain, plain_wall), dask, before)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--model", default="random:ViT-B-32@0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--s3", action="store_true", help="the lakes on moto's S3 server on 127.0.0.1")
    args = parser.parse_args()
    result = run(args.items, args.workers, args.shard_size, args.model, args.batch_size, s3=args.s3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
