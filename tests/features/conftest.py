"""Shared fixtures for the feature-store tests: an isolated working folder, a lake, commit metadata, row factories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from features import CommitInfo

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

ItemsFactory = Callable[..., pl.DataFrame]
EmbeddingsFactory = Callable[..., pl.DataFrame]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No lake settings leak in from the environment, and ``./lake`` / ``./mmcrs.toml`` live in ``tmp_path``."""
    for name in ("MMCRS_LAKE", "MMCRS_CONFIG", "MMCRS_STORAGE_OPTIONS", "MMCRS_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def lake(tmp_path: Path) -> str:
    """A lake root folder (not created: the first write creates it)."""
    return str(tmp_path / "test-lake")


@pytest.fixture
def commit() -> CommitInfo:
    return CommitInfo(stage="test_stage", flow_run_id="run-1", config_hash="cfg-1", input_versions={"items": 3})


def _items(ids: Sequence[str], *, title: str = "title", at: datetime = NOW) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": list(ids),
            "source": ["demo"] * len(ids),
            "title": [f"{title} {i}" for i in ids],
            "content_hash": [f"{title}-{i}" for i in ids],
            "ingested_at": [at] * len(ids),
        }
    )


def _embeddings(
    ids: Sequence[str], modality: str, *, dim: int = 4, offset: float = 0.0, model_id: str = "enc-1"
) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "item_id": list(ids),
            "modality": [modality] * n,
            "model_id": [model_id] * n,
            "source_hash": [f"h-{i}" for i in ids],
            "dim": [dim] * n,
            "vector": [[offset + k + j / 10 for j in range(dim)] for k in range(n)],
            "computed_at": [NOW] * n,
        },
        schema_overrides={"dim": pl.Int32, "vector": pl.List(pl.Float32)},
    )


@pytest.fixture
def now() -> datetime:
    """The write time the row factories stamp into audit columns by default."""
    return NOW


@pytest.fixture
def make_items() -> ItemsFactory:
    """``make_items(["a", "b"], title="t", at=datetime)``: minimal valid ``items`` rows."""
    return _items


@pytest.fixture
def make_embeddings() -> EmbeddingsFactory:
    """``make_embeddings(["a"], "image", dim=4, offset=0.0)``: valid ``item_embeddings`` rows."""
    return _embeddings
