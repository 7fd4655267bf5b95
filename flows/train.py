"""The train flow: train, evaluate, export and register a graph-prompt recommender from the lake."""

from __future__ import annotations

from prefect import flow

from tasks.train.task import train_task
from training.pipeline import DEFAULT_MODEL_NAME


@flow(name="train", log_prints=True)
def train_flow(
    lake: str | None = None,
    config: dict | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    artifacts_root: str | None = None,
    auto_promote: bool = True,
    force: bool = False,
) -> dict[str, object]:
    """Train a new model version (``config``: ``training.train.TrainConfig`` fields) unless nothing changed."""
    return train_task(config, lake, model_name, artifacts_root, auto_promote, force)
