"""Settings of the train stage: the training config, the registered model's name, promotion."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from tasks.settings import StageSettings
from training.config import TrainConfig

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

    def __post_init__(self) -> None:
        self.train_config()  # unknown or mistyped keys fail here, before anything runs

    def train_config(self) -> TrainConfig:
        """The validated ``TrainConfig`` (flat keys of older configs accepted)."""
        try:
            return TrainConfig.from_dict(self.config)
        except ValidationError as exc:
            raise ValueError(f"train config: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``field: what is wrong; ...``."""
    parts = []
    for error in exc.errors():
        where, what = ".".join(map(str, error["loc"])), str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {what}" if where else what)
    return "; ".join(parts)
