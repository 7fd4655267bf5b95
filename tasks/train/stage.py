"""The train stage's core: train, evaluate, export and register one model version (plain Python)."""

from __future__ import annotations

from collections.abc import Callable

import features
from features import Lake
from training.pipeline import train_and_register
from training.registry import PromotionRule
from training.train import TrainConfig


def train_stage(
    config: TrainConfig,
    *,
    lake: Lake,
    model_name: str,
    artifacts_root: str | None = None,
    rule: PromotionRule | None = None,
    auto_promote: bool = True,
    run_id: str | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, object]:
    """Train, evaluate, export, register (and maybe promote) one model version; returns the run report.

    Raises:
        ValueError: the lake has no dialogues to train on.
    """
    if features.table_version("turns", lake=lake) is None:
        raise ValueError(f"no turns table in {lake.root}: ingest dialogues first")
    return train_and_register(
        config,
        lake=lake,
        model_name=model_name,
        artifacts_root=artifacts_root,
        rule=rule,
        auto_promote=auto_promote,
        on_epoch=on_epoch,
        run_id=run_id,
    ).to_dict()
