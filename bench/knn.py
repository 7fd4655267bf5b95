"""Benchmark: exact kNN graph backends, the approximate backend, and the co-mention graph, side by side.

    .venv/bin/python -m bench.knn [--sizes 20000 100000] [--dim 512] [--k 10] [--sklearn-max 20000]

Every contender runs in its own subprocess (so its peak RSS is its own) on the same seeded data (clustered
Gaussian vectors, so neighbour sets are well defined): ``torch`` (ours: block pairs computed once, merged
top-k), ``faiss_flat`` (``IndexFlatIP``) and ``sklearn`` (``NearestNeighbors(algorithm="brute",
metric="cosine")``, up to ``--sklearn-max`` items). Neighbour sets must be identical to ours (checked);
``faiss_hnsw`` (approximate) reports build+query time and recall@k against exact. Then the co-mention and
transition graphs of the ReDial dialogues (``../shared/data/redial``, when present): time and peak RSS.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

_CHILD = """
import json, resource, sys, time
import numpy as np
from bench.knn import data
name, n, dim, k, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = data(n, dim)
if name == "torch":
    import torch
    from tasks.graphs.knn import knn_exact
    run = lambda: knn_exact(torch.from_numpy(x), k=k)[0].numpy()
elif name == "faiss_flat":
    from tasks.graphs.knn_faiss import knn_faiss_flat
    run = lambda: knn_faiss_flat(x, k=k)[0]
elif name == "faiss_hnsw":
    from tasks.graphs.knn_faiss import knn_faiss_hnsw
    run = lambda: knn_faiss_hnsw(x, k=k)[0]
elif name == "sklearn":
    from sklearn.neighbors import NearestNeighbors
    def run():
        found = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="cosine").fit(x).kneighbors(x)[1]
        return np.array([[j for j in row if j != i][:k] for i, row in enumerate(found)])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
idx = run()
seconds = time.perf_counter() - start
np.save(out, idx)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mib": peak // 1024, "extra_rss_mib": (peak - base) // 1024}))
"""

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


def data(n: int, dim: int, clusters: int = 200, seed: int = 0) -> np.ndarray:
    """Seeded clustered vectors: cluster centres plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    return centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)


def _child(script: str, *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _same_sets(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose neighbour sets are identical."""
    return float(np.mean([set(x.tolist()) == set(y.tolist()) for x, y in zip(a, b, strict=True)]))


def _tie_gap(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Over the rows whose sets differ: the largest similarity gap between a neighbour one side has and the
    other lacks (0 when no row differs). Gaps at float rounding level mean the sets differ only in near-ties."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    gap = 0.0
    for row, (mine, theirs) in enumerate(zip(a, b, strict=True)):
        only_mine, only_theirs = set(mine.tolist()) - set(theirs.tolist()), set(theirs.tolist()) - set(mine.tolist())
        if only_mine:
            sims = x[list(only_mine | only_theirs)] @ x[row]
            gap = max(gap, float(sims.max() - sims.min()))
    return gap


def run(sizes: list[int], dim: int, k: int, sklearn_max: int) -> dict[str, object]:
    """Time every contender at every size; return the numbers."""
    work = Path(tempfile.mkdtemp(prefix="mmcrs-knn-bench-"))
    results: dict[str, object] = {}
    for n in sizes:
        names = ["torch", "faiss_flat", *(["sklearn"] if n <= sklearn_max else []), "faiss_hnsw"]
        row: dict[str, object] = {}
        for name in names:
            row[name] = _child(_CHILD, name, str(n), str(dim), str(k), str(work / f"{name}-{n}.npy"))
        ours = np.load(work / f"torch-{n}.npy")
        for name in names[1:]:
            other = np.load(work / f"{name}-{n}.npy")
            key = "recall_at_k_vs_exact" if name == "faiss_hnsw" else "identical_neighbour_sets"
            if name != "faiss_hnsw":
                row[name]["max_similarity_gap_where_sets_differ"] = _tie_gap(data(n, dim), ours, other)  # type: ignore[index]
            row[name][key] = (
                round(_same_sets(ours, other), 4)
                if key.startswith("identical")
                else round(  # type: ignore[index]
                    float(
                        np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(other, ours, strict=True)])
                    ),
                    4,
                )
            )
        row["speedup_torch_over_faiss_flat"] = round(row["faiss_flat"]["seconds"] / row["torch"]["seconds"], 2)  # type: ignore[index]
        results[str(n)] = row
    redial = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "redial" / "redial_test.jsonl"
    if redial.is_file():
        results["redial_graphs"] = _child(_GRAPHS, str(redial))
    results["params"] = {"dim": dim, "k": k}
    results["machine"] = f"{platform.machine()} python {platform.python_version()}, {_cores()} cores"
    results["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    return results


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sklearn-max", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(run(args.sizes, args.dim, args.k, args.sklearn_max), indent=2))


if __name__ == "__main__":
    main()
