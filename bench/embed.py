"""Benchmark: the embedding stage against the model's own speed, a naive loop, and sentence-transformers.

    .venv/bin/python -m bench.embed [--posters 2000] [--model random:ViT-B-32@0] [--batch-size 32]

Side by side in one run, on ``--posters`` generated posters (300x450 PNG) in a temporary lake:
1. ``pipeline``: the image modality of the embed stage (blob read + decode in DataLoader workers + the model's
   preprocess + forward + Delta commits per shard) against ``forward``: the same model on the same images
   pre-decoded into tensors, same batch size (measured before and after the pipeline, averaged);
2. ``naive``: open, preprocess and encode one image at a time (on a subset, as images/s);
3. text: ``TextEncoder.encode`` against ``sentence_transformers.SentenceTransformer.encode`` (same MiniLM
   weights, same texts, batch 64), alternated twice;
4. ``rerun``: the embed stage again on the unchanged lake, as a fraction of the first run.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image, ImageDraw

import features
from features import CommitInfo
from features.blobs import poster_store
from tasks.embed.config import EmbedConfig
from tasks.embed.stage import embed
from training.encoders.clip import ClipEncoder
from training.encoders.text import DEFAULT_TEXT_MODEL, TextEncoder
from training.spec import ModelSpec


def _poster(i: int) -> bytes:
    rng = np.random.default_rng(i)
    image = Image.new("RGB", (300, 450), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, 280, 2))
        draw.rectangle(
            (x, y, x + int(rng.integers(10, 120)), y + int(rng.integers(10, 160))),
            fill=tuple(int(c) for c in rng.integers(0, 255, 3)),
        )
    draw.text((20, 400), f"Movie {i}", fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _texts(n: int) -> list[str]:
    genres = ["drama", "comedy", "thriller", "science fiction", "animation", "documentary", "romance", "horror"]
    return [
        f"Movie {i} ({1950 + i % 70}). Genres: {genres[i % 8]}, {genres[(i * 3) % 8]}. A story about "
        f"{'a family ' * (1 + i % 5)}and what happens to them in {1950 + i % 70}."
        for i in range(n)
    ]


def _lake(root: Path | str, n: int) -> tuple[Path | str, list[str]]:
    """A lake of ``n`` items (generated posters and texts) under ``root`` (a folder or an object-store URI)."""
    lake = root / "lake" if isinstance(root, Path) else f"{root.rstrip('/')}/lake"
    store = poster_store(features.resolve_lake(lake))
    shas = [store.put(_poster(i)) for i in range(n)]
    items = pl.DataFrame(
        {
            "item_id": [f"b{i:05d}" for i in range(n)],
            "source": "bench",
            "text": _texts(n),
            "poster_sha256": shas,
            "content_hash": [str(i) for i in range(n)],
            "ingested_at": datetime.now(UTC),
        }
    )
    features.upsert("items", items, commit=CommitInfo(stage="bench"), lake=lake)
    return lake, shas


def _forward(clip: ClipEncoder, pixels: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(pixels), batch):
        clip.encode_images(pixels[i : i + batch])
    return time.perf_counter() - start


def _naive(clip: ClipEncoder, lake: Path, shas: list[str]) -> float:
    store = poster_store(features.resolve_lake(lake))
    start = time.perf_counter()
    for sha in shas:
        with Image.open(io.BytesIO(store.get(sha))) as image:
            clip.encode_images(clip.preprocess(image.convert("RGB")).unsqueeze(0))
    return time.perf_counter() - start


def _text(n: int) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer

    texts = _texts(n)
    ours = TextEncoder.load(DEFAULT_TEXT_MODEL, device="cpu")
    theirs = SentenceTransformer(str(ModelSpec.parse(DEFAULT_TEXT_MODEL).path()), device="cpu", local_files_only=True)
    times: dict[str, list[float]] = {"ours": [], "sentence_transformers": []}
    for _ in range(2):
        start = time.perf_counter()
        a, _ = ours.encode(texts, batch_size=64)
        times["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        b = theirs.encode(texts, batch_size=64, normalize_embeddings=True)
        times["sentence_transformers"].append(time.perf_counter() - start)
    assert float(np.abs(a - b).max()) < 1e-3, "the two encoders disagree"
    best = {k: min(v) for k, v in times.items()}
    return {
        "texts": n,
        "ours_items_per_s": round(n / best["ours"], 1),
        "sentence_transformers_items_per_s": round(n / best["sentence_transformers"], 1),
        "ratio_ours_over_st": round(best["sentence_transformers"] / best["ours"], 2),
    }


def run(n: int, model: str, batch: int, naive_n: int, workers: int) -> dict[str, object]:
    """Build the lake, time every contender, return the numbers."""
    root = Path(tempfile.mkdtemp(prefix="mmcrs-embed-bench-"))
    try:
        lake, shas = _lake(root, n)
        clip = ClipEncoder.load(model, device="cpu")
        store = poster_store(features.resolve_lake(lake))
        pixels = torch.stack([clip.preprocess(Image.open(io.BytesIO(store.get(s))).convert("RGB")) for s in shas])
        forward_s = [_forward(clip, pixels, batch)]
        config = EmbedConfig(
            modalities=("image",), clip_model=model, batch_size=batch, num_workers=workers, device="cpu"
        )
        start = time.perf_counter()
        first = embed(lake=lake, config=config)
        pipeline_s = time.perf_counter() - start
        forward_s.append(_forward(clip, pixels, batch))
        start = time.perf_counter()
        again = embed(lake=lake, config=config)
        rerun_s = time.perf_counter() - start
        naive_s = _naive(clip, lake, shas[:naive_n])
        assert first.modalities["image"].embedded == n and again.modalities["image"].embedded == 0
        forward = sum(forward_s) / 2
        return {
            "posters": n,
            "model": model,
            "batch_size": batch,
            "decode_workers": workers,
            "images_per_s": {
                "pipeline": round(n / pipeline_s, 1),
                "forward_only": round(n / forward, 1),
                "naive": round(naive_n / naive_s, 1),
            },
            "forward_s_before_after": [round(t, 1) for t in forward_s],
            "pipeline_over_forward": round(forward / pipeline_s, 3),
            "pipeline_over_naive": round((n / pipeline_s) / (naive_n / naive_s), 2),
            "rerun_s": round(rerun_s, 3),
            "rerun_fraction_of_first": round(rerun_s / pipeline_s, 4),
            "text": _text(n),
            "machine": f"{platform.machine()} python {platform.python_version()} torch {torch.__version__} "
            f"threads {torch.get_num_threads()}",
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=int, default=2000)
    parser.add_argument("--model", default="random:ViT-B-32@0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--naive", type=int, default=300, help="posters for the one-at-a-time loop")
    parser.add_argument("--workers", type=int, default=1, help="decode workers of the pipeline")
    args = parser.parse_args()
    print(json.dumps(run(args.posters, args.model, args.batch_size, args.naive, args.workers), indent=2))


if __name__ == "__main__":
    main()
