"""A modality and graphs declared by this test alone flow through ingest, embed, graphs and training.

The test registers a toy modality (the CLIP text tower, random tiny weights, on the items' ``title`` column)
with its kNN graph, and a toy dialogue-derived graph, editing no other module: the embed stage writes the toy
vectors, the graph stage builds both graphs, and training rebuilds the dialogue-derived one from its training
split with the toy builder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import features
from features import CommitInfo
from tasks.embed.config import EmbedConfig
from tasks.embed.stage import embed
from tasks.graphs.stage import GraphsConfig, _Builder, build_graphs
from tasks.ingest.catalog import ingest_catalog
from training.data import DataOptions, load_training_data
from training.modalities import Encoder, GraphSpec, ModalitySpec, item_columns, knn_graph_spec, register
from training.turn_graphs import CoMentionConfig, mentions

N_ITEMS, N_DIALOGUES = 8, 20
TOY = ModalitySpec("toy_title", item_columns("title"), Encoder.CLIP_TEXT, knn_graph="toy_title_knn")
TINY_CLIP = {"clip_model": "random:mmcrs-tiny@0", "batch_size": 4, "num_workers": 0}


def first_mention_pairs(turns: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Toy dialogue-derived graph: each dialogue's first mentioned item -> every other item it mentions."""
    found = mentions(turns).sort("dialogue_id", "turn_idx", "item")
    first = found.group_by("dialogue_id").agg(pl.col("item").first().alias("src"))
    pairs = found.join(first, on="dialogue_id").filter(pl.col("item") != pl.col("src"))
    counts = pairs.group_by("src", pl.col("item").alias("dst")).agg(pl.len().cast(pl.Float32).alias("weight"))
    return counts.collect()


FIRST_PAIRS = GraphSpec("toy_first_pairs", first_mention_pairs, derived_from_turns=True)


@pytest.fixture
def toys() -> Iterator[None]:
    with register(TOY, knn_graph_spec(TOY), FIRST_PAIRS):
        yield


def _catalog(tmp_path: Path) -> str:
    """Ingest a tiny catalog; item ``m<i>`` is titled ``Toy movie <i>``."""
    path = tmp_path / "items.jsonl"
    rows = [
        {"item_id": f"m{i}", "title": f"Toy movie {i}", "year": 2000 + i, "text": f"plot {i}"} for i in range(N_ITEMS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lake = str(tmp_path / "lake")
    assert ingest_catalog(path, lake=lake, source="toy").written == N_ITEMS
    return lake


def _turns(lake: str) -> None:
    """Dialogue ``d<k>`` mentions ``m<k % 8>`` first, then ``m<(k + 1 + k // 8) % 8>`` (one pair per dialogue)."""
    rows = []
    for k in range(N_DIALOGUES):
        for t, item in enumerate((f"m{k % N_ITEMS}", f"m{(k + 1 + k // N_ITEMS) % N_ITEMS}")):
            rows.append(
                {
                    "dialogue_id": f"d{k:02d}",
                    "turn_idx": t,
                    "role": "seeker",
                    "text": f"I liked @{item}",
                    "mentioned_item_ids": [item],
                    "ingested_at": datetime(2026, 11, 1, tzinfo=UTC),
                }
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("turn_idx").cast(pl.Int32))
    features.upsert("turns", frame, commit=CommitInfo(stage="test"), lake=lake)


def test_toy_modality_is_embedded_and_gets_its_knn_graph(tmp_path: Path, toys: None) -> None:
    lake, config = _catalog(tmp_path), EmbedConfig(modalities=("toy_title",), **TINY_CLIP)  # type: ignore[arg-type]
    assert "toy_title" in EmbedConfig().modalities  # every registered modality by default
    summary = embed(lake=lake, config=config)
    model_id = summary.modalities["toy_title"].model_id
    assert summary.modalities["toy_title"].embedded == N_ITEMS
    vectors = features.read("item_embeddings", lake=lake).filter(pl.col("modality") == "toy_title").collect()
    assert vectors.height == N_ITEMS
    titles = {f"m{i}": hashlib.sha256(f"Toy movie {i}".encode()).hexdigest() for i in range(N_ITEMS)}
    assert dict(zip(vectors["item_id"], vectors["source_hash"], strict=True)) == titles  # the title, nothing else
    assert embed(lake=lake, config=config).modalities["toy_title"].embedded == 0  # unchanged: nothing

    assert "toy_title_knn" in GraphsConfig().graphs  # every registered graph by default
    built = build_graphs(lake=lake, config=GraphsConfig(graphs=("toy_title_knn",), k=2))
    assert built.built["toy_title_knn"]["params"] == {"k": 2, "symmetrize": False, "exact": True, "model_id": model_id}
    edges = features.read("item_graph_edges", lake=lake).filter(pl.col("graph") == "toy_title_knn").collect()
    assert edges.height == 2 * N_ITEMS and set(edges["src"]) == {f"m{i}" for i in range(N_ITEMS)}


def test_toy_dialogue_graph_is_built_and_rebuilt_from_training_dialogues_only(tmp_path: Path, toys: None) -> None:
    lake = _catalog(tmp_path)
    _turns(lake)
    built = build_graphs(lake=lake, config=GraphsConfig(graphs=("toy_first_pairs",)))
    assert built.built["toy_first_pairs"]["edges"] == N_DIALOGUES  # every dialogue's pair, lake-wide

    data = load_training_data(DataOptions(graphs=("toy_first_pairs",), use_summaries=False), lake=lake)
    graph = data.graphs["toy_first_pairs"]
    got = {(graph.item_ids[s], graph.item_ids[d]) for s, d in graph.edge_index.T.tolist()}
    turns = features.read("turns", lake=lake).collect()
    pair_of = {
        d: tuple(g.sort("turn_idx")["mentioned_item_ids"].explode()) for (d,), g in turns.group_by("dialogue_id")
    }
    train = set(data.split.of("train"))
    assert got == {pair_of[d] for d in train}
    assert got != {pair_of[d] for d in pair_of}  # valid / test dialogues' pairs stay out
    assert float(graph.edge_weight.sum()) == len(train)


def test_builtin_graph_parameters_come_from_the_config(tmp_path: Path) -> None:
    config = GraphsConfig(co_mention=CoMentionConfig(window=2), transition_horizon=3, transition_min_count=2, k=4)
    builder = _Builder(features.resolve_lake(tmp_path / "lake"), config, None, None)  # type: ignore[arg-type]
    assert builder._options("co_mention") == {"co_mention": CoMentionConfig(window=2)}
    assert builder._options("transition") == {"horizon": 3, "min_count": 2}
    assert builder._knn_params(100) == {"k": 4, "symmetrize": False, "exact": True}
    approx = builder._knn_params(config.exact_max_items + 1)
    assert approx["exact"] is False and approx["hnsw"] == config.knn().hnsw()
