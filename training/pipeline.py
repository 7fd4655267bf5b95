"""One training run end to end, as a plain function: read -> fit -> baselines -> export -> register -> promote.

Also ``retrain_from_manifest``: the same run again from an artifact's manifest (same table versions, seed
and config), which on the CPU reproduces the same metrics.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import features
from features import CommitInfo, Lake
from training.artifacts import locate
from training.baselines import evaluate_baselines
from training.data import DataOptions, TrainingData, load_training_data
from training.export import export_run
from training.registry import PromotionRule, next_version, promote, register
from training.train import EpochCallback, TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)
DEFAULT_MODEL_NAME = "mmcrs-graph-prompt"


@dataclass(frozen=True)
class RunReport:
    """What a run produced: version, artifact location, metrics, baselines, promotion, skipped inputs.

    ``artifact_dir`` is the absolute location (a folder or an object-store URI); ``artifact_uri`` is what the
    registry recorded (``_artifacts/<model>/<version>``, relative to the lake, unless an artifacts root was given).
    """

    model_name: str
    version: int
    artifact_dir: str
    metrics: dict
    baselines: dict
    promoted: bool
    promotion_reason: str
    skipped: dict[str, str]
    input_versions: dict[str, int]
    timings: dict[str, float]
    artifact_uri: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable copy."""
        return asdict(self)


def data_options(config: TrainConfig) -> DataOptions:
    """The data side of a train config."""
    return DataOptions(
        seed=config.seed,
        fractions=config.fractions,
        graphs=config.graphs,
        modalities=config.modalities,
        use_summaries=config.model.use_summary,
    )


def train_and_register(
    config: TrainConfig,
    *,
    lake: Lake | str | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    artifacts_root: str | os.PathLike[str] | None = None,
    versions: dict[str, int] | None = None,
    rule: PromotionRule | None = None,
    auto_promote: bool = True,
    on_epoch: EpochCallback | None = None,
    run_id: str | None = None,
) -> RunReport:
    """Train, evaluate (model and baselines, both protocols), export a new version, register it as
    ``candidate`` and, with ``auto_promote``, promote it when it beats production under ``rule``.

    The model's ``metrics["valid"]`` / ``metrics["test"]`` (what promotion reads) are serving-time, without
    context labels; ``metrics["valid_oracle_labels"]`` / ``metrics["test_oracle_labels"]`` score with them.

    The version's files go to ``<lake>/_artifacts/<model_name>/<version>/`` (any lake URI), or under
    ``artifacts_root`` when one is given."""
    resolved = features.resolve_lake(lake)
    data = load_training_data(data_options(config), lake=resolved, versions=versions)
    for name, reason in data.skipped.items():
        log.info("skipped %s: %s", name, reason)
    result = fit(data, config, on_epoch=on_epoch)
    baselines, skipped_baselines = evaluate_baselines(data, "test")
    data.skipped = data.skipped | {f"baseline:{k}": v for k, v in skipped_baselines.items()}
    version = next_version(model_name, lake=resolved)
    uri = export_run(
        result, data, model_name=model_name, version=version, lake=resolved, root=artifacts_root, baselines=baselines
    )
    commit = CommitInfo(
        stage="train", flow_run_id=run_id, config_hash=features.config_hash(config), input_versions=data.input_versions
    )
    register(
        model_name,
        version,
        metrics=result.metrics,
        config=config.model_dump(mode="json"),
        input_versions=data.input_versions,
        artifact_uri=uri,
        lake=resolved,
        commit=commit,
    )
    promoted, reason = _promote(model_name, version, rule=rule, auto_promote=auto_promote, lake=resolved, commit=commit)
    return RunReport(
        model_name,
        version,
        locate(uri, lake=resolved),
        result.metrics,
        baselines,
        promoted,
        reason,
        data.skipped,
        data.input_versions,
        result.timings,
        uri,
    )


def _promote(
    model_name: str, version: int, *, rule: PromotionRule | None, auto_promote: bool, lake: Lake, commit: CommitInfo
) -> tuple[bool, str]:
    """Promote ``version`` under ``rule`` when ``auto_promote``; returns (promoted, reason)."""
    if not auto_promote:
        return False, "auto-promotion off"
    outcome = promote(model_name, version, rule=rule, lake=lake, commit=commit)
    return outcome.promoted, outcome.reason


def retrain_from_manifest(
    manifest_path: str | os.PathLike[str], *, lake: Lake | str | None = None
) -> tuple[TrainResult, TrainingData]:
    """Train again with the config, seed and table versions an artifact's manifest recorded (nothing exported)."""
    folder = Path(manifest_path).parent
    manifest = json.loads(Path(manifest_path).read_text())
    config = TrainConfig.from_dict(json.loads((folder / "config.json").read_text())["train"])
    data = load_training_data(
        data_options(config), lake=lake or manifest["inputs"]["lake"], versions=manifest["inputs"]["tables"]
    )
    return fit(data, config), data
