"""Benchmark: the pipeline's cost per item as the catalog grows (10k .. 1M items), and a 1 % nightly delta.

    python -m bench.scale --sizes 10000 100000 1000000 --out bench/out/scale.json \\
        [--poster-max 20000] [--latency-ms 20] [--delta] [--minilm-sample 2000] [--threads 1] [--keep --workdir W]
    python -m bench.scale --delta-again bench/out/scale.json --workdir W --out bench/out/scale.json

For each size, a generated catalog (``bench.scale_data``: ~300-character texts, distinct titles) and
``size / 10`` generated ReDial dialogues that mention its items; up to ``--poster-max`` items, every item has a
realistic 300x450 JPEG poster served from 127.0.0.1 (``bench.posters.PosterServer``) with a set latency. The
real stages run one after the other, each in its own process through the nightly runner
(``flows.nightly.run_one``: lake lock, skip rule, ``pipeline_runs``), with the settings stored in the lake:

- ``catalog_ingest``: the catalog file into ``items``;
- ``dialogue_ingest`` (extra): the dialogues, the catalog re-checked unchanged (what a nightly with a snapshot
  catalog does);
- ``crawl`` (sizes <= ``--poster-max``): fetch, decode, hash and store every poster;
- ``text_embed``: the ``clip_text`` modality with a ``random:`` tiny CLIP (the pipeline's own cost: read,
  plan, batch, write); the packaged MiniLM's model-bound rate is measured on a sample and extrapolated;
- ``graphs``: the kNN graph of those vectors (backend ``auto`` when the stage has it, else ``faiss-approx``)
  and the dialogue graphs;
- ``nightly_noop``: ``mmcrs run`` on the finished lake (nothing new: every stage skips).

Per stage: seconds (inside the runner, Prefect's start-up left out), items/s, the stage process's peak RSS
(sampled every 50 ms), and the lake's bytes after it. Per stage over the sizes:
``cost_ratio_largest_vs_smallest`` = (seconds per item at the largest size) / (at the smallest).
``--delta`` then adds 1 % new items and 1 % new dialogues to the largest lake and runs the stages again,
recording each against its full run and the rows each wrote. ``--delta-again`` adds one more 1 % to a kept
lake (new code measured on the lake an earlier run built: each stage's skip rule sees new inputs, and every
stage updates incrementally whatever the code version, since only parameters define a graph's base).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import psutil

from bench.posters import PosterServer
from bench.scale_data import write_catalog, write_dialogues

REPO = Path(__file__).resolve().parents[1]
MARK = "SCALE-RESULT "
TINY_CLIP = "random:mmcrs-tiny@0"
TEXT_MODALITY = "clip_text"  # the CLIP text tower: a random tiny model measures the pipeline, not a model


def _graph_settings() -> dict[str, Any]:
    from tasks.graphs.config import BACKENDS
    from training.modalities import modality, turn_graphs

    backend = "auto" if "auto" in BACKENDS else "faiss-approx"
    return {"graphs": [str(modality(TEXT_MODALITY).knn_graph), *turn_graphs()], "backend": backend}


def lake_settings(*, catalog: str, dialogues: str | None, crawl: bool) -> dict[str, dict[str, Any]]:
    """The stage settings the benchmark stores in its lake (so ``mmcrs run`` sees the same as each stage)."""
    ingest = {"catalog": catalog, **({"dialogues": dialogues} if dialogues else {})}
    return {
        "ingest": ingest,
        "crawl": {"enabled": crawl, "allow_hosts": ["127.0.0.1"]},
        "summarize": {"enabled": False},
        "embed": {"modalities": [TEXT_MODALITY], "clip_model": TINY_CLIP},
        "graphs": _graph_settings(),
        "train": {"enabled": False},
    }


def _save_settings(lake: Path, settings: dict[str, dict[str, Any]]) -> None:
    import features
    from features.lake_settings import write_stage_settings

    write_stage_settings(features.resolve_lake(str(lake)), settings)


def run_stage_child(stage: str, lake: str) -> None:
    """Child process: run one stage through the nightly runner and print its record as one JSON line."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from flows.nightly import run_one

    record = run_one(stage, {}, lake=lake)
    summary = record.summary.to_dict() if record.summary is not None else None
    out = {"status": record.status, "seconds": record.duration_s, "rows_out": record.rows_out, "summary": summary}
    print(MARK + json.dumps(out, default=str), flush=True)


def _sample_rss(process: psutil.Popen, peak: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
        except psutil.Error:
            return
        stop.wait(0.05)


def measured(command: list[str], *, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``command``: (wall seconds, peak RSS of its process in MiB, stdout); raises on a failure."""
    began, peak, stop = time.perf_counter(), [0], threading.Event()
    process = psutil.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=_sample_rss, args=(process, peak, stop), daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return time.perf_counter() - began, round(peak[0] / 2**20, 1), stdout


def _lake_bytes(lake: Path) -> int:
    return sum(p.stat().st_size for p in lake.rglob("*") if p.is_file())


def _stage(stage: str, lake: Path, items: int, env: dict[str, str]) -> dict[str, Any]:
    """One stage in its own process: seconds, items/s, peak RSS, lake bytes, and what it wrote."""
    command = [sys.executable, "-m", "bench.scale", "--run-stage", stage, "--lake", str(lake)]
    wall, rss, stdout = measured(command, env=env)
    line = next(line for line in reversed(stdout.splitlines()) if line.startswith(MARK))
    result = json.loads(line.removeprefix(MARK))
    seconds = float(result["seconds"])
    return {
        "seconds": round(seconds, 2),
        "items_per_s": round(items / seconds, 1) if seconds else None,
        "peak_rss_mib": rss,
        "process_s": round(wall, 2),
        "lake_bytes": _lake_bytes(lake),
        "status": result["status"],
        "rows_out": result["rows_out"],
        "summary": result["summary"],
    }


def _noop(lake: Path, items: int, env: dict[str, str]) -> dict[str, Any]:
    """``mmcrs run`` on the lake, as the nightly schedule runs it: nothing new, every stage skips."""
    command = [sys.executable, "-c", "from flows.cli import main; main()", "run", "--lake", str(lake)]
    wall, rss, stdout = measured(command, env=env)
    return {
        "seconds": round(wall, 2),
        "items_per_s": round(items / wall, 1),
        "peak_rss_mib": rss,
        "lake_bytes": _lake_bytes(lake),
        "output": stdout.strip().splitlines()[-12:],
    }


def child_env(root: Path, threads: int = 1) -> dict[str, str]:
    """The stage processes' environment: this checkout first, Prefect offline, ``threads`` torch/faiss threads."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env |= {"PREFECT_HOME": str(root / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env |= {"DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PREFECT_LOGGING_LEVEL": "WARNING"}
    return env


def run_size(size: int, root: Path, *, poster_base: str | None, env: dict[str, str]) -> dict[str, Any]:
    """Generate the inputs of one size, run every stage on a fresh lake, and return the measurements."""
    lake, data = root / "lake", root / "data"
    catalog = write_catalog(data / "catalog.parquet", 0, size, poster_base=poster_base)
    frame = pl.read_parquet(catalog, columns=["item_id", "title", "year"])
    dialogues = write_dialogues(data / "dialogues.jsonl", frame, first=0, count=max(1, size // 10))
    del frame
    crawl = poster_base is not None
    _save_settings(lake, lake_settings(catalog=str(catalog), dialogues=None, crawl=crawl))
    stages = {"catalog_ingest": _stage("ingest", lake, size, env)}
    _save_settings(lake, lake_settings(catalog=str(catalog), dialogues=str(dialogues), crawl=crawl))
    stages["dialogue_ingest"] = _stage("ingest", lake, size, env)
    if crawl:
        stages["crawl"] = _stage("crawl", lake, size, env)
    stages["text_embed"] = _stage("embed", lake, size, env)
    stages["graphs"] = _stage("graphs", lake, size, env)
    stages["nightly_noop"] = _noop(lake, size, env)
    inputs = {"catalog_bytes": catalog.stat().st_size, "dialogues": max(1, size // 10)}
    return {"items": size, "posters": size if crawl else 0, "inputs": inputs, "stages": stages}


def run_delta(
    size: int, root: Path, full: dict[str, Any], *, poster_base: str | None, env: dict[str, str], again: int = 0
) -> dict:
    """Add 1 % new items (a catalog file of the new items) and 1 % new dialogues, run every stage again
    (``again``: how many such deltas the lake had already; each adds ids after the last one's)."""
    lake, data, new = root / "lake", root / "data", max(1, size // 100)
    name = f"delta{again + 1}" if again else "delta"
    first = size + again * new
    catalog = write_catalog(data / f"catalog_{name}.parquet", first, new, poster_base=poster_base, seed=1 + again)
    everything = pl.concat(
        [pl.read_parquet(p, columns=["item_id", "title", "year"]) for p in sorted(data.glob("catalog*.parquet"))]
    )
    dialogues = write_dialogues(
        data / f"dialogues_{name}.jsonl", everything, first=size // 10 + 1 + again * new, count=new, seed=1 + again
    )
    del everything
    crawl = poster_base is not None
    _save_settings(lake, lake_settings(catalog=str(catalog), dialogues=str(dialogues), crawl=crawl))
    stages = {"ingest": _stage("ingest", lake, new, env)}
    if crawl:
        stages["crawl"] = _stage("crawl", lake, new, env)
    stages["text_embed"] = _stage("embed", lake, new, env)
    stages["graphs"] = _stage("graphs", lake, new, env)
    stages["nightly_noop"] = _noop(lake, new, env)
    full_stages = full["stages"]
    full_total = sum(full_stages[s]["seconds"] for s in full_stages if s != "nightly_noop")
    delta_total = sum(stages[s]["seconds"] for s in stages if s != "nightly_noop")
    against = {"ingest": ("catalog_ingest", "dialogue_ingest")}
    share = {}
    for name, stats in stages.items():
        reference = sum(full_stages[s]["seconds"] for s in against.get(name, (name,)) if s in full_stages)
        share[name] = round(stats["seconds"] / reference, 4) if reference else None
    return {
        "items_added": new,
        "dialogues_added": new,
        "stages": stages,
        "share_of_full_per_stage": share,
        "full_s": round(full_total, 2),
        "delta_s": round(delta_total, 2),
        "share_of_full": round(delta_total / full_total, 4),
        "target_le_5pct": delta_total / full_total <= 0.05,
        "embedded_rows": _embedded(stages["text_embed"]),
    }


def _embedded(stats: dict[str, Any]) -> int:
    modalities = (stats.get("summary") or {}).get("modalities") or {}
    return sum(int(m.get("embedded") or 0) for m in modalities.values())


def minilm_rate(sample: int, threads: int = 1) -> dict[str, Any]:
    """The packaged MiniLM's encode rate on ``sample`` generated item texts (``threads`` torch threads)."""
    import torch

    from bench.scale_data import item_frame
    from training.encoders.text import TextEncoder

    torch.set_num_threads(threads)
    texts = item_frame(0, sample)["text"].to_list()
    encoder = TextEncoder.load(device="cpu")
    encoder.encode(texts[:64], batch_size=32)  # warm-up
    began = time.perf_counter()
    encoder.encode(texts, batch_size=32)
    seconds = time.perf_counter() - began
    return {
        "sample": sample,
        "seconds": round(seconds, 2),
        "items_per_s": round(sample / seconds, 1),
        "threads": threads,
    }


def tiny_clip_rate(sample: int, threads: int = 1) -> dict[str, Any]:
    """The ``random:`` tiny CLIP text tower's own rate (tokenize + forward, batch 32, ``threads`` torch threads) on
    ``sample`` item texts: the stage's seconds minus ``items / rate`` is the pipeline's own cost."""
    import torch

    from bench.scale_data import item_frame
    from training.encoders.clip import ClipEncoder

    torch.set_num_threads(threads)
    texts = item_frame(0, sample)["text"].to_list()
    encoder = ClipEncoder.load(TINY_CLIP, device="cpu")
    encoder.encode_texts(texts[:64])  # warm-up
    began = time.perf_counter()
    for start in range(0, sample, 32):
        encoder.encode_texts(texts[start : start + 32])
    seconds = time.perf_counter() - began
    return {
        "sample": sample,
        "seconds": round(seconds, 2),
        "items_per_s": round(sample / seconds, 1),
        "threads": threads,
    }


def _pipeline_share(out: dict[str, Any]) -> None:
    """Per size: the text embed stage's seconds left after the tiny model's own compute (read, plan, write)."""
    rate = out["tiny_clip"]["items_per_s"]
    for result in out["sizes"].values():
        stage = result["stages"]["text_embed"]
        model_s = result["items"] / rate
        stage["model_s_at_sampled_rate"] = round(model_s, 1)
        stage["pipeline_s"] = round(max(0.0, stage["seconds"] - model_s), 1)
        stage["pipeline_s_per_1k_items"] = round(1000 * stage["pipeline_s"] / result["items"], 3)


def cost_ratios(sizes: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Per stage: seconds per item at the largest size that ran it over seconds per item at the smallest."""
    ordered = sorted(sizes.values(), key=lambda s: s["items"])
    out: dict[str, float | None] = {}
    for stage in dict.fromkeys(name for size in ordered for name in size["stages"]):
        ran = [s for s in ordered if stage in s["stages"]]
        small, large = ran[0], ran[-1]
        if large is small or not small["stages"][stage]["seconds"]:
            out[stage] = None
            continue
        per_small = small["stages"][stage]["seconds"] / small["items"]
        per_large = large["stages"][stage]["seconds"] / large["items"]
        out[stage] = round(per_large / per_small, 3)
    return out


def _extrapolate(out: dict[str, Any]) -> None:
    """The MiniLM text embedding's time at each size at the sampled rate (marked as extrapolated)."""
    rate = out.get("minilm", {}).get("items_per_s")
    for result in out["sizes"].values():
        if rate:
            result["text_embed_minilm_extrapolated_s"] = round(result["items"] / rate, 1)


def _run_all(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": {}}
    largest = max(args.sizes)
    for size in sorted(args.sizes):
        root = base / f"size-{size}"
        env = child_env(root, args.threads)
        posters = size if size <= args.poster_max else 0
        server = PosterServer(posters + max(1, size // 100), latency_ms=args.latency_ms) if posters else None
        poster_base = server.__enter__() if server else None
        try:
            out["sizes"][str(size)] = run_size(size, root, poster_base=poster_base, env=env)
            if args.delta and size == largest:
                out["delta"] = run_delta(size, root, out["sizes"][str(size)], poster_base=poster_base, env=env)
        finally:
            if server:
                server.__exit__(None, None, None)
        print(json.dumps({size: {k: v["seconds"] for k, v in out["sizes"][str(size)]["stages"].items()}}), flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return out


def delta_again(args: argparse.Namespace, head: dict[str, Any]) -> dict[str, Any]:
    """Another 1 % delta on the kept largest lake of an earlier run (``--delta-again``), written to ``--out``."""
    previous = json.loads(args.delta_again.read_text())
    size = max(int(s) for s in previous["sizes"])
    root = (args.workdir or Path()) / f"size-{size}"
    if not (root / "lake").is_dir():
        raise SystemExit(f"no kept lake at {root / 'lake'} (run with --keep --workdir W, then pass --workdir W)")
    full, again = previous["sizes"][str(size)], 1 + len(previous.get("delta_again", []))
    count = size + (again + 1) * max(1, size // 100)
    server = PosterServer(count, latency_ms=args.latency_ms) if full["posters"] else None
    poster_base = server.__enter__() if server else None
    try:
        result = run_delta(size, root, full, poster_base=poster_base, env=child_env(root, args.threads), again=again)
    finally:
        if server:
            server.__exit__(None, None, None)
    previous.setdefault("delta_again", []).append(head | result | {"load_after": os.getloadavg()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=2, default=str))
    return previous


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "scale.json")
    parser.add_argument("--poster-max", type=int, default=20_000, help="largest size whose items have posters")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the poster server's latency per request")
    parser.add_argument("--delta", action="store_true", help="then add 1 %% to the largest lake and run again")
    parser.add_argument("--minilm-sample", type=int, default=2000, help="texts to time the encoders on (0: skip)")
    parser.add_argument("--workdir", type=Path, default=None, help="where lakes go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the lakes and inputs")
    parser.add_argument("--threads", type=int, default=1, help="torch / faiss threads of each stage process")
    parser.add_argument(
        "--delta-again",
        type=Path,
        metavar="JSON",
        help="the JSON of an earlier run made with --keep --workdir W --delta: add another 1 %% to its largest lake "
        "(under W) and run every stage again, against that run's full-run seconds; appended to the JSON",
    )
    parser.add_argument("--run-stage", help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write its JSON to ``--out`` and return it."""
    args = _parser().parse_args(argv)
    if args.run_stage:
        run_stage_child(args.run_stage, args.lake)
        return {}
    head = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "load_before": os.getloadavg()}
    head |= {"machine": f"{platform.machine()}, {os.cpu_count()} cpus, {psutil.virtual_memory().total >> 30} GiB"}
    head |= {"command": " ".join(["python -m bench.scale", *(argv if argv is not None else sys.argv[1:])])}
    if args.delta_again:
        return delta_again(args, head)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="mmcrs-bench-scale-"))
    out = head | _run_all(args, base)
    if args.minilm_sample:
        out["minilm"] = minilm_rate(args.minilm_sample, args.threads)
        _extrapolate(out)
        out["tiny_clip"] = tiny_clip_rate(args.minilm_sample, args.threads)
        _pipeline_share(out)
    out["cost_ratio_largest_vs_smallest"] = cost_ratios(out["sizes"])
    out["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
