"""Fixtures for the summarize tests: a tiny randomly initialised causal LM with an in-test tokenizer, a lake
with dialogues, and a backend wrapper that records what was asked and answered."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import features
from features import CommitInfo
from tasks.summarize.backends import Backend, ChatPrompt, Generation

from .tiny_lm import build_tiny_lm

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def peaky_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LM whose answers depend on the whole context (a wrong position or a wrong row's cache shows)."""
    return build_tiny_lm(tmp_path_factory.mktemp("peaky-lm"), initializer_range=0.3)


class Recording:
    """A backend that delegates to a real one and keeps every (prompt, answer) pair."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.model_id, self.accepts_images = inner, inner.model_id, inner.accepts_images
        self.calls: list[tuple[ChatPrompt, Generation]] = []

    def generate(
        self, prompts: list[ChatPrompt], *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> list[Generation]:
        out = self.inner.generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        self.calls.extend(zip(prompts, out, strict=True))
        return out

    def release_cache(self, keys: Iterable[str] | None = None) -> int:
        return self.inner.release_cache(keys)  # type: ignore[attr-defined]

    def cached_states(self) -> int:
        return self.inner.cached_states()  # type: ignore[attr-defined]


@pytest.fixture
def lake(tmp_path: Path) -> str:
    return str(tmp_path / "lake")


TurnSpec = tuple[str, str, Sequence[str]]  # (role, text, mentioned item ids)


def write_dialogue(
    lake: str, dialogue_id: str, turns: Sequence[TurnSpec], liked: dict[str, bool] | None = None
) -> None:
    """Write one dialogue's turns (and the items they mention, titled ``Title <id>``) into the lake."""
    commit = CommitInfo(stage="test", flow_run_id=None, config_hash=None, input_versions={})
    liked = liked or {}
    rows = [
        {
            "dialogue_id": dialogue_id,
            "turn_idx": i,
            "role": role,
            "text": text,
            "mentioned_item_ids": list(ids),
            "liked": [liked.get(x) for x in ids] if ids else None,
            "seen": None,
            "suggested": None,
            "source_message_id": None,
            "ingested_at": NOW,
        }
        for i, (role, text, ids) in enumerate(turns)
    ]
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "turn_idx": pl.Int32,
            "liked": pl.List(pl.Boolean),
            "seen": pl.List(pl.Boolean),
            "suggested": pl.List(pl.Boolean),
            "mentioned_item_ids": pl.List(pl.String),
        },
    )
    features.upsert("turns", frame, commit=commit, lake=lake)
    ids = sorted({x for _, _, m in turns for x in m})
    if ids:
        write_items(lake, ids)


def write_items(lake: str, ids: Sequence[str], *, poster: bool = False) -> None:
    commit = CommitInfo(stage="test", flow_run_id=None, config_hash=None, input_versions={})
    frame = pl.DataFrame(
        {
            "item_id": list(ids),
            "source": ["test"] * len(ids),
            "title": [f"Title {i}" for i in ids],
            "year": [1999] * len(ids),
            "text": [f"a funny old movie number {i}" for i in ids],
            "attributes": [json.dumps({"genres": ["comedy"]})] * len(ids),
            "poster_sha256": [("0" * 64) if poster else None] * len(ids),
            "content_hash": [f"h{i}" for i in ids],
            "ingested_at": [NOW] * len(ids),
        },
        schema_overrides={"year": pl.Int32},
    )
    features.upsert("items", frame, commit=commit, lake=lake)


@pytest.fixture
def dialogue_writer(lake: str) -> Callable[..., None]:
    return lambda dialogue_id, turns, liked=None: write_dialogue(lake, dialogue_id, turns, liked)
