"""Scale-out on a real Dask ``LocalCluster`` (2 worker processes): the same rows as the default runner.

One cluster serves the module (its address is what production passes as ``dask_address``); one test lets the
flow start its own ``LocalCluster``. Small random CLIP (``mmcrs-tiny``) and the tiny random causal LM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import features
from flows.nightly import run_one
from tests.tasks.embed.test_embed_stage import _lake

# A cold Dask worker imports torch, open_clip and transformers (~1 min on 2 shared cores): not in the fast suite.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CLIP = "random:mmcrs-tiny@0"
KEY = ["item_id", "modality", "model_id"]


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster.scheduler_address


def _rows(lake: Path) -> pl.DataFrame:
    return features.read("item_embeddings", lake=lake).collect().sort(KEY)


def _embed(lake: Path, **options: object) -> dict:
    settings = {"modalities": ["image", "clip_text", "text"], "clip_model": CLIP, "batch_size": 2, "shard_size": 3}
    summary = run_one("embed", settings | options, lake=str(lake), force=True).summary
    assert summary is not None
    return summary.to_dict()


def _summarize(lake: str, **options: object) -> dict:
    summary = run_one("summarize", options, lake=lake, force=True).summary
    assert summary is not None
    return summary.to_dict()["parts"]


def test_embed_on_dask_matches_the_default_runner_and_reruns_nothing(tmp_path: Path, dask_address: str) -> None:
    default_lake, dask_lake = _lake(tmp_path / "default", 7, corrupt={5}), _lake(tmp_path / "dask", 7, corrupt={5})
    _embed(default_lake)
    summary = _embed(dask_lake, task_runner="dask", dask_address=dask_address)

    expected, got = _rows(default_lake), _rows(dask_lake)
    assert got.height == expected.height == 7 + 7 + 6  # texts x2, posters but the corrupt one
    assert got.select(KEY).is_duplicated().sum() == 0
    assert got.select(KEY).equals(expected.select(KEY))
    for mine, theirs in zip(got["vector"].to_list(), expected["vector"].to_list(), strict=True):
        assert np.allclose(mine, theirs, atol=1e-5)
    quarantined = features.read("quarantine", lake=dask_lake).collect()
    assert quarantined["record_key"].to_list() == ["i5"]

    assert summary["runner"] == "dask" and len(summary["workers"]) == 2  # type: ignore[arg-type]
    modalities = summary["modalities"]
    assert isinstance(modalities, dict)
    assert {m: s["shards"] for m, s in modalities.items()} == {"image": 3, "clip_text": 3, "text": 3}
    # 9 shards, 2 workers, 2 models: each worker loads each model at most once
    assert 1 <= int(summary["model_loads"]) <= 4  # type: ignore[call-overload]

    version = features.table_version("item_embeddings", lake=dask_lake)
    again = _embed(dask_lake, task_runner="dask", dask_address=dask_address)
    again_modalities = again["modalities"]
    assert isinstance(again_modalities, dict)
    assert {m: s["embedded"] for m, s in again_modalities.items()} == {"image": 0, "clip_text": 0, "text": 0}
    assert features.table_version("item_embeddings", lake=dask_lake) == version


def _summaries(lake: str) -> pl.DataFrame:
    """Everything a summarize run wrote, as comparable rows (times and run ids left out)."""
    parts = []
    for table, key in (
        ("item_summaries", "item_id"),
        ("preference_summaries", "dialogue_id"),
        ("quarantine", "record_key"),
    ):
        if features.table_version(table, lake=lake) is None:
            continue
        rows = features.read(table, lake=lake).collect()
        text = "summary" if "summary" in rows.columns else "excerpt"
        extra = pl.col("upto_turn").cast(pl.String) if "upto_turn" in rows.columns else pl.lit("")
        parts.append(
            rows.select(
                pl.lit(table).alias("table"), pl.col(key).alias("key"), extra.alias("turn"), pl.col(text).alias("text")
            )
        )
    return pl.concat(parts).sort(["table", "key", "turn"])


def _dialogues(lake: str) -> None:
    from tests.tasks.summarize.conftest import write_dialogue

    for d in range(5):
        a, b, c = (f"m{d}{k}" for k in range(3))
        write_dialogue(
            lake,
            f"d{d}",
            [
                ("seeker", "i love funny old movies", [a]),
                ("recommender", "try this one", [b]),
                ("seeker", "seen it, liked it", [c]),
                ("recommender", "then watch", [a, c]),
            ],
        )


def test_summarize_on_dask_matches_the_default_runner_and_reruns_nothing(tmp_path: Path, dask_address: str) -> None:
    from tests.tasks.summarize.tiny_lm import build_tiny_lm

    model = str(build_tiny_lm(tmp_path / "tiny-lm"))
    default_lake, dask_lake = str(tmp_path / "default"), str(tmp_path / "dask")
    for lake in (default_lake, dask_lake):
        _dialogues(lake)
    options: dict[str, object] = {"model_dir": model, "max_new_tokens": 6, "batch_size": 2, "what": "both"}
    plain = _summarize(default_lake, **options)  # type: ignore[arg-type]
    scaled = _summarize(dask_lake, task_runner="dask", dask_address=dask_address, **options)  # type: ignore[arg-type]

    expected, got = _summaries(default_lake), _summaries(dask_lake)
    assert got.height == expected.height > 0
    assert got.select("table", "key", "turn").is_duplicated().sum() == 0
    assert got.equals(expected)  # same prompts in the same batches: the same greedy answers
    for what in ("items", "preferences"):
        mine, theirs = scaled[what], plain[what]
        assert isinstance(mine, dict) and isinstance(theirs, dict)
        assert (mine["written"], mine["quarantined"]) == (theirs["written"], theirs["quarantined"])
        assert mine["runner"] == "dask" and mine["model_loads"] <= 2  # once per worker at most
    prefs = scaled["preferences"]
    assert isinstance(prefs, dict) and prefs["candidates"] == 10  # 5 dialogues x 2 recommendation points

    again = _summarize(dask_lake, task_runner="dask", dask_address=dask_address, **options)  # type: ignore[arg-type]
    for what in ("items", "preferences"):
        counts = again[what]
        assert isinstance(counts, dict) and counts["generated"] == 0 and counts["cached"] == counts["candidates"]
    assert _summaries(dask_lake).equals(got)
