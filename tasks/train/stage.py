"""The train stage's core: train, evaluate, export and register one model version (plain Python)."""

from __future__ import annotations

from collections.abc import Callable

import features
from tasks.settings import StageContext
from tasks.train.config import TrainSettings
from training.pipeline import train_and_register


def train_stage(
    settings: TrainSettings, context: StageContext, *, on_epoch: Callable[[dict[str, float]], None] | None = None
) -> dict[str, object]:
    """Train, evaluate, export, register (and with ``settings.auto_promote`` maybe promote) one model version
    on ``context.lake``; returns the run report. ``on_epoch`` is called with each epoch's metrics.

    Raises:
        ValueError: the lake has no dialogues to train on.
    """
    if features.table_version("turns", lake=context.lake) is None:
        raise ValueError(f"no turns table in {context.lake.root}: ingest dialogues first")
    return train_and_register(
        settings.train_config(),
        lake=context.lake,
        model_name=settings.model_name,
        artifacts_root=settings.artifacts_root or context.artifacts_root,
        auto_promote=settings.auto_promote,
        on_epoch=on_epoch,
        run_id=context.run_id,
    ).to_dict()
