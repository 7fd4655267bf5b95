"""Settings of the train stage: the training config, the registered model's name, promotion."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.settings import StageSettings

DEFAULT_MODEL_NAME = "mmcrs-graph-prompt"


@dataclass(frozen=True)
class TrainSettings(StageSettings):
    """What a user sets for one train run.

    Attributes:
        config: ``training.train.TrainConfig`` fields (epochs, seed, the model's sizes, ...).
        model_name: the registered model's name.
        artifacts_root: where the model's files go (None: the run's artifacts root).
        auto_promote: promote the new version when it beats production on validation Recall@10.
    """

    config: dict[str, object] = field(default_factory=dict)
    model_name: str = DEFAULT_MODEL_NAME
    artifacts_root: str | None = None
    auto_promote: bool = True
