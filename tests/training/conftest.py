"""A tiny lake for the training tests: clustered items, dialogues that stay within a cluster, graphs,
text vectors and preference summaries; plus a tiny random-LM train config."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import features
from features import CommitInfo
from training.model import ModelConfig
from training.spec import random_lm
from training.train import TrainConfig

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
N_ITEMS, N_CLUSTERS, N_DIALOGUES = 24, 4, 48


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MMCRS_LAKE", "MMCRS_CONFIG", "MMCRS_STORAGE_OPTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _turns(rng: random.Random) -> list[dict]:
    rows = []
    for d in range(N_DIALOGUES):
        cluster = d % N_CLUSTERS
        members = [f"m{i}" for i in range(N_ITEMS) if i % N_CLUSTERS == cluster]
        picks = rng.sample(members, 4)
        script = [
            ("seeker", f"hi, I loved @{picks[0]}", [picks[0]], [True]),
            ("recommender", f"then try @{picks[1]}", [picks[1]], [None]),
            ("seeker", f"seen it, also liked @{picks[2]}", [picks[2]], [True]),
            ("recommender", f"you will like @{picks[3]} and @{picks[0]}", [picks[3], picks[0]], [None, None]),
        ]
        for t, (role, text, items, liked) in enumerate(script):
            rows.append(
                {
                    "dialogue_id": f"d{d:03d}",
                    "turn_idx": t,
                    "role": role,
                    "text": text,
                    "mentioned_item_ids": items,
                    "liked": liked,
                    "ingested_at": NOW,
                }
            )
    return rows


def write_fixture_lake(root: str) -> None:
    """Items, turns, co_mention edges, text vectors and summaries for a clustered toy domain."""
    rng = random.Random(7)
    commit = CommitInfo(stage="fixture")
    ids = [f"m{i}" for i in range(N_ITEMS)]
    features.upsert(
        "items",
        pl.DataFrame(
            {
                "item_id": ids,
                "source": ["demo"] * N_ITEMS,
                "title": [f"Movie {i}" for i in range(N_ITEMS)],
                "content_hash": ids,
                "ingested_at": [NOW] * N_ITEMS,
            }
        ),
        commit=commit,
        lake=root,
    )
    turns = pl.DataFrame(_turns(rng), schema_overrides={"turn_idx": pl.Int32})
    features.upsert("turns", turns, commit=commit, lake=root)
    edges = [(a, b) for a in range(N_ITEMS) for b in range(N_ITEMS) if a != b and a % N_CLUSTERS == b % N_CLUSTERS]
    features.upsert(
        "item_graph_edges",
        pl.DataFrame(
            {
                "graph": ["co_mention"] * len(edges),
                "src": [f"m{a}" for a, _ in edges],
                "dst": [f"m{b}" for _, b in edges],
                "weight": [1.0] * len(edges),
                "rank": [1] * len(edges),
            },
            schema_overrides={"weight": pl.Float32, "rank": pl.Int32},
        ),
        commit=commit,
        lake=root,
    )
    vectors = [[1.0 if i % N_CLUSTERS == c else 0.0 for c in range(N_CLUSTERS)] for i in range(N_ITEMS)]
    features.upsert(
        "item_embeddings",
        pl.DataFrame(
            {
                "item_id": ids,
                "modality": ["text"] * N_ITEMS,
                "model_id": ["enc"] * N_ITEMS,
                "source_hash": ids,
                "dim": [N_CLUSTERS] * N_ITEMS,
                "vector": vectors,
                "computed_at": [NOW] * N_ITEMS,
            },
            schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
        ),
        commit=commit,
        lake=root,
    )
    features.upsert(
        "preference_summaries",
        pl.DataFrame(
            {
                "dialogue_id": [f"d{d:03d}" for d in range(N_DIALOGUES)],
                "upto_turn": [0] * N_DIALOGUES,
                "model_id": ["llm"] * N_DIALOGUES,
                "prompt_hash": ["p"] * N_DIALOGUES,
                "summary": [f"likes genre {d % N_CLUSTERS}" for d in range(N_DIALOGUES)],
                "generated_at": [NOW] * N_DIALOGUES,
            },
            schema_overrides={"upto_turn": pl.Int32},
        ),
        commit=commit,
        lake=root,
    )


@pytest.fixture
def fixture_lake(tmp_path: Path) -> str:
    root = str(tmp_path / "lake")
    write_fixture_lake(root)
    return root


TINY_CONFIG = TrainConfig(
    lm=random_lm(hidden=32),
    model=ModelConfig(id_dim=16, max_context_tokens=32, use_summary=True),  # the summary path exercised
    epochs=3,
    batch_size=16,
    lr=1e-2,
    progress=False,
    patience=5,
)


@pytest.fixture
def tiny_config() -> TrainConfig:
    """A random tiny LM and few epochs: seconds on a CPU."""
    return TINY_CONFIG
