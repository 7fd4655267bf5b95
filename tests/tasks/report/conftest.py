"""A small real lake for the report tests: items with genres, two embedding modalities, two graphs, stage
runs, quarantine rows, and two registered model versions (v1 production, v2 the latest candidate)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import features
from features import CommitInfo
from features.runs import StageRun, record_run
from training import registry

T0 = datetime(2026, 11, 1, tzinfo=UTC)
N_ITEMS = 40
GENRES = ("Drama", "Comedy", "Action")
STAGES = ("ingest-dialogues", "embed", "graphs:co_mention", "graphs:text_knn", "train")
GRAPHS = ("co_mention", "text_knn")
QUARANTINE = {
    ("ingest-dialogues", "no messages"): 3,
    ("ingest-dialogues", "invalid JSON"): 2,
    ("ingest-catalog", "year is not a year"): 1,
}


def _metrics(scale: float) -> dict[str, dict[str, float]]:
    return {
        p: {
            "recall@1": 0.05 * scale,
            "recall@10": 0.2 * scale,
            "recall@50": 0.5 * scale,
            "mrr@10": 0.1,
            "ndcg@10": 0.12,
            "n": 20,
        }
        for p in ("standard", "no_repeats")
    }


def item_ids() -> list[str]:
    return [f"ml:{i:03d}" for i in range(N_ITEMS)]


def write_items(lake: Path) -> None:
    rows = []
    for i, item in enumerate(item_ids()):
        attrs = None if i % 10 == 9 else json.dumps({"genres": [GENRES[i % 3], "Romance"]})
        rows.append(
            {
                "item_id": item,
                "source": "movielens",
                "title": f"Movie {i}",
                "attributes": attrs,
                "content_hash": f"h{i}",
                "ingested_at": T0,
            }
        )
    features.upsert("items", pl.DataFrame(rows), commit=CommitInfo(stage="ingest-catalog"), lake=lake)


def write_embeddings(lake: Path) -> None:
    rng = np.random.default_rng(7)
    frames = []
    for modality, dim in (("text", 8), ("image", 6)):
        centres = rng.normal(size=(3, dim)) * 4
        vectors = [centres[i % 3] + rng.normal(size=dim) for i in range(N_ITEMS)]
        frames.append(
            pl.DataFrame(
                {
                    "item_id": item_ids(),
                    "modality": modality,
                    "model_id": f"{modality}-enc@1",
                    "source_hash": "s",
                    "dim": dim,
                    "vector": [v.astype(np.float32).tolist() for v in vectors],
                    "computed_at": T0,
                },
                schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
            )
        )
    features.upsert("item_embeddings", pl.concat(frames), commit=CommitInfo(stage="embed"), lake=lake)


def write_graphs(lake: Path) -> None:
    ids = item_ids()
    knn = [(ids[i], ids[(i + d) % N_ITEMS], 1.0 - d / 10, d) for i in range(N_ITEMS) for d in (1, 2, 3)]
    co = [(ids[0], ids[j], 1.0, j) for j in range(1, 11)] + [(ids[j], ids[0], 1.0, 1) for j in range(1, 11)]
    for graph, edges in (("text_knn", knn), ("co_mention", co)):
        frame = pl.DataFrame(
            edges, schema={"src": pl.Utf8, "dst": pl.Utf8, "weight": pl.Float32, "rank": pl.Int32}, orient="row"
        ).with_columns(graph=pl.lit(graph))
        features.replace_partition(
            "item_graph_edges", frame, partition={"graph": graph}, commit=CommitInfo(stage="graphs"), lake=lake
        )


def write_quarantine(lake: Path) -> None:
    rows = [
        {
            "source": f"{stage}-src",
            "record_key": f"{reason}-{n}",
            "stage": stage,
            "reason": reason,
            "quarantined_at": T0,
        }
        for (stage, reason), count in QUARANTINE.items()
        for n in range(count)
    ]
    features.upsert("quarantine", pl.DataFrame(rows), commit=CommitInfo(stage="ingest"), lake=lake)


def write_runs(lake: Path) -> dict[str, str]:
    """Stage runs: an older ingest run (flow-old) and the latest run of every stage (flow-new)."""
    ids = {
        "old": record_run(
            StageRun(
                stage="ingest-dialogues",
                fingerprint="f0",
                status="ok",
                flow_run_id="flow-old",
                counts={"read": 5, "written": 5, "quarantined": 0},
                started_at=T0,
                duration_s=1.0,
            ),
            lake=lake,
        )
    }
    counts = {
        "ingest-dialogues": {"read": 1342, "written": 1337, "quarantined": 5},
        "embed": {"embedded": 80},
        "graphs:co_mention": {"nodes": 11, "edges": 20},
        "graphs:text_knn": {"nodes": 40, "edges": 120},
        "train": {"version": 2},
    }
    for i, stage in enumerate(STAGES):
        ids[stage] = record_run(
            StageRun(
                stage=stage,
                fingerprint=f"f{i}",
                status="ok",
                flow_run_id="flow-new",
                input_versions={"turns": 1},
                output_versions={"items": 2},
                counts=counts[stage],
                started_at=T0 + timedelta(hours=1, minutes=i),
                duration_s=2.5 + i,
            ),
            lake=lake,
        )
    return ids


def split_manifest(seed: int = 0, turns: int = 1) -> dict:
    """The ``split`` and ``inputs`` sections of a manifest whose test split is seed ``seed`` of turns v``turns``."""
    samples = {"train": 80, "valid": 10, "test": 20}
    return {
        "split": {"seed": seed, "fractions": [0.8, 0.1, 0.1], "samples": samples},
        "inputs": {"tables": {"turns": turns}},
    }


def write_models(lake: Path, artifacts: Path, *, seeds: tuple[int, int] = (0, 0)) -> None:
    for version, scale in ((1, 1.0), (2, 1.2)):
        folder = artifacts / "m" / str(version)
        folder.mkdir(parents=True)
        manifest = {
            **split_manifest(seed=seeds[version - 1]),
            "metrics": {
                "model": {"test": _metrics(scale)},
                "baselines": {"popularity": _metrics(0.5), "text_knn": _metrics(0.8)},
            },
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        (folder / "MODEL_CARD.md").write_text("# m\n")
        registry.register(
            "m",
            version,
            metrics={"valid": _metrics(scale), "test": _metrics(scale)},
            config={},
            input_versions={"turns": 1},
            artifact_uri=str(folder.resolve()),
            lake=lake,
        )
        if version == 1:
            registry.promote("m", 1, lake=lake)


@pytest.fixture(scope="module")
def full_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(lake, artifacts root, run ids) with every input of the report."""
    root = tmp_path_factory.mktemp("report-lake")
    lake, artifacts = root / "lake", root / "artifacts"
    write_items(lake)
    write_embeddings(lake)
    write_graphs(lake)
    write_quarantine(lake)
    runs = write_runs(lake)
    write_models(lake, artifacts)
    return lake, artifacts, runs
