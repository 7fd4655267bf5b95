"""Benchmark: the kNN backends' crossover, the graph stage at scale (full build and a 1 % nightly delta).

    .venv/bin/python -m bench.knn [--sizes 10000 20000 50000 100000 200000] [--dim 384] [--k 10]
        [--flat-max 50000] [--scale 1000000] [--threads 1] [--out bench/out/knn.json]

Vectors: a seeded mixture of Gaussians on the unit sphere with low intrinsic dimension (``data``: 256 cluster
centres in a 32-d latent space, mapped into ``--dim`` by a fixed random projection, plus small isotropic
noise, normalised), like sentence embeddings and unlike isotropic noise, on which HNSW is meaningless.

1. Crossover (each contender in its own subprocess, so its peak RSS is its own, one after another):
   ``torch`` (exact, blocked), ``faiss_flat`` (``IndexFlatIP``, up to ``--flat-max``) and ``faiss_hnsw``
   (the graph stage's default HNSW parameters, build + search) plus the sampled recall@k measurement every
   approximate build pays. The threshold of ``backend="auto"`` is where HNSW + recall becomes cheaper than
   exact (log-log interpolation between the bracketing sizes).
2. Scale (``--scale`` items, 0 to skip): the graph stage on a lake: a full build (``auto``: HNSW at this
   size) with its stored sampled recall and saved HNSW index, then 1 % new items and the nightly run again
   (incremental, searched with the saved index), then another 1 % with the index blob deleted (the exact
   fallback): each delta's seconds against the full build's, and its recall.
3. Co-mention and transition graphs of the ReDial dialogues (``../shared/data/redial``, when present).
Prints one JSON object (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

_THREADS = """
import os, torch, faiss
threads = int(os.environ.get("BENCH_THREADS", "1"))
torch.set_num_threads(threads); faiss.omp_set_num_threads(threads)
"""

_CHILD = (
    _THREADS
    + """
import json, resource, sys, time
import numpy as np
from bench.knn import data
from tasks.graphs.knn_graph import KnnConfig, normalised, sampled_recall
name, n, dim, k, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = data(n, dim)
if name == "torch":
    from tasks.graphs.knn import knn_exact
    run = lambda: knn_exact(torch.from_numpy(x), k=k)[0].numpy()
elif name == "faiss_flat":
    from tasks.graphs.knn_faiss import knn_faiss_flat
    run = lambda: knn_faiss_flat(x, k=k)[0]
elif name == "faiss_hnsw":
    from tasks.graphs.knn_faiss import knn_faiss_hnsw
    run = lambda: knn_faiss_hnsw(x, k=k, **KnnConfig().hnsw())[0]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start, cpu = time.perf_counter(), time.process_time()
idx = run()
seconds = time.perf_counter() - start
result = {"seconds": round(seconds, 2), "cpu_s": round(time.process_time() - cpu, 2)}
if name == "faiss_hnsw":
    start = time.perf_counter()
    result["recall_at_k_sampled"] = round(sampled_recall(normalised(x), idx, k=k, sample=1000), 4)
    result["recall_sample_s"] = round(time.perf_counter() - start, 2)
np.save(out, idx)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(result | {"peak_rss_mib": peak // 1024, "extra_rss_mib": (peak - base) // 1024}))
"""
)

_SCALE = (
    _THREADS
    + """
import json, os, resource, sys, tempfile, time
import numpy as np, polars as pl
from datetime import UTC, datetime
import features
from bench.knn import data
from tasks.graphs.hnsw_delta import graph_index_store
from tasks.graphs.stage import GraphsConfig, build_graphs
n, dim, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lake = tempfile.mkdtemp(prefix="mmcrs-knn-scale-")
def embed(first, x, day):
    ids = pl.Series("item_id", [f"item{j:08d}" for j in range(first, first + len(x))])
    rows = pl.DataFrame({"item_id": ids, "vector": x}).with_columns(
        modality=pl.lit("text"), model_id=pl.lit("bench"), source_hash=pl.lit("h"), dim=pl.lit(dim, pl.Int32),
        vector=pl.col("vector").cast(pl.List(pl.Float32)), computed_at=pl.lit(datetime(2026, 12, day, tzinfo=UTC)))
    start = time.perf_counter()
    features.upsert("item_embeddings", rows, commit=features.CommitInfo(stage="bench"), lake=lake)
    return round(time.perf_counter() - start, 2)
x = data(n + 2 * (n // 100), dim)
out = {"items": n, "write_embeddings_s": embed(0, x[:n], 1)}
config = GraphsConfig(graphs=("text_knn",), k=k)
cpu = time.process_time()
summary = build_graphs(lake=lake, config=config)
full = summary.built["text_knn"]
full["cpu_s"] = round(time.process_time() - cpu, 1)
out["full"] = {key: full.get(key) for key in ("seconds", "cpu_s", "backend", "recall_at_k_vs_exact", "edges", "mode")}
out["full"]["stage_s"] = summary.elapsed_s
out["delta_items"] = n // 100
keys = ("seconds", "cpu_s", "mode", "delta_search", "recall_at_k_vs_exact", "added", "searched", "entered",
        "rows_rewritten")
def night(name, first, day):
    out[f"write_{name}_embeddings_s"] = embed(first, x[first : first + n // 100], day)
    cpu = time.process_time()
    summary = build_graphs(lake=lake, config=config)
    run = summary.built["text_knn"]
    run["cpu_s"] = round(time.process_time() - cpu, 1)
    out[name] = {key: run.get(key) for key in keys} | {"stage_s": summary.elapsed_s}
    out[f"{name}_over_full"] = round(summary.elapsed_s / out["full"]["stage_s"], 4)
    return run
# 1. the nightly delta over the saved HNSW index; 2. the next one without it (exact fallback), side by side
first = night("delta", n, 2)
store = graph_index_store(features.resolve_lake(lake))
os.unlink(os.path.join(store.root, store.key(first["hnsw_index"])))
night("delta_exact_fallback", n + n // 100, 3)
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(out))
"""
)

_GRAPHS = """
import json, resource, sys, tempfile, time
from tasks.ingest.dialogues import ingest_dialogues
import features
from training.turn_graphs import co_mention_edges, transition_edges
lake = tempfile.mkdtemp()
ingest_dialogues(sys.argv[1], lake=lake)
turns = features.read("turns", lake=lake).collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter(); co = co_mention_edges(turns); co_s = time.perf_counter() - start
start = time.perf_counter(); tr = transition_edges(turns); tr_s = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
items = len(set(turns.explode("mentioned_item_ids")["mentioned_item_ids"].drop_nulls()))
print(json.dumps({"dialogues": turns["dialogue_id"].n_unique(), "items": items, "co_mention_edges": co.height,
                  "co_mention_s": round(co_s, 3), "transition_edges": tr.height, "transition_s": round(tr_s, 3),
                  "extra_rss_mib": (peak - base) // 1024}))
"""


def data(n: int, dim: int, *, clusters: int = 256, latent: int = 32, seed: int = 0) -> np.ndarray:
    """Seeded (n, dim) float32 unit vectors: a Gaussian mixture in a ``latent``-d space, projected to ``dim``
    with small isotropic noise (generated in chunks, so memory stays ~ the output)."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((latent, dim), dtype=np.float32) / np.float32(math.sqrt(latent))
    centres = rng.standard_normal((clusters, latent), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65_536):
        rows = min(65_536, n - start)
        z = centres[rng.integers(0, clusters, rows)] + 0.6 * rng.standard_normal((rows, latent), dtype=np.float32)
        chunk = z @ projection + 0.1 * rng.standard_normal((rows, dim), dtype=np.float32)
        out[start : start + rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def _child(script: str, *args: str, threads: int) -> dict[str, object]:
    env = os.environ | {"BENCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _size(n: int, args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Every contender at one size, side by side."""
    names = ["torch", *(["faiss_flat"] if n <= args.flat_max else []), "faiss_hnsw"]
    row: dict[str, object] = {}
    for name in names:
        out = work / f"{name}-{n}.npy"
        row[name] = _child(_CHILD, name, str(n), str(args.dim), str(args.k), str(out), threads=args.threads)
    ours = np.sort(np.load(work / f"torch-{n}.npy"), axis=1)
    if "faiss_flat" in row:
        flat = np.sort(np.load(work / f"faiss_flat-{n}.npy"), axis=1)
        row["faiss_flat"]["identical_neighbour_sets"] = round(float((ours == flat).all(axis=1).mean()), 4)  # type: ignore[index]
    hnsw = row["faiss_hnsw"]
    assert isinstance(hnsw, dict)
    row["hnsw_with_recall_s"] = round(float(hnsw["seconds"]) + float(hnsw["recall_sample_s"]), 2)
    row["exact_over_hnsw"] = round(float(row["torch"]["seconds"]) / float(row["hnsw_with_recall_s"]), 3)  # type: ignore[index]
    return row


def crossover(rows: dict[int, dict[str, object]]) -> int | None:
    """The size where exact torch and HNSW (+ recall sample) cost the same: log-log interpolation of
    ``exact_over_hnsw`` across 1 between the bracketing sizes; None when it never crosses."""
    sizes = sorted(rows)
    for small, large in itertools.pairwise(sizes):
        r0, r1 = float(rows[small]["exact_over_hnsw"]), float(rows[large]["exact_over_hnsw"])  # type: ignore[arg-type]
        if r0 < 1.0 <= r1:
            t = -math.log(r0) / (math.log(r1) - math.log(r0))
            at = math.exp(math.log(small) + t * (math.log(large) - math.log(small)))
            return int(float(f"{at:.2g}"))
    return sizes[0] if sizes and float(rows[sizes[0]]["exact_over_hnsw"]) >= 1.0 else None  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> dict[str, object]:
    """The crossover table, the scale run and the turn graphs; return the numbers."""
    work = Path(tempfile.mkdtemp(prefix="mmcrs-knn-bench-"))
    results: dict[str, object] = {"uptime_start": _uptime()}
    rows = {n: _size(n, args, work) for n in args.sizes}
    results["sizes"] = {str(n): row for n, row in rows.items()}
    results["crossover_items"] = crossover(rows)
    if args.scale:
        results["scale"] = _child(_SCALE, str(args.scale), str(args.dim), str(args.k), threads=args.threads)
    redial = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "redial" / "redial_test.jsonl"
    if redial.is_file():
        results["redial_graphs"] = _child(_GRAPHS, str(redial), threads=args.threads)
    results["params"] = {"dim": args.dim, "k": args.k, "threads": args.threads}
    results["machine"] = f"{platform.machine()} python {platform.python_version()}, {os.cpu_count()} cores"
    results["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["uptime_end"] = _uptime()
    return results


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 50_000, 100_000, 200_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--flat-max", type=int, default=50_000)
    parser.add_argument("--scale", type=int, default=1_000_000, help="items of the stage run (0: skip)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = json.dumps(run(args), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(results)
    print(results)


if __name__ == "__main__":
    main()
