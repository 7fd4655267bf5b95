"""Prefect face of the train stage: a per-epoch table artifact while training, the test metrics after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.settings import StageContext
from tasks.summary import StageSummary
from tasks.task import publish
from tasks.train.config import TrainSettings
from tasks.train.stage import train_stage

_METRICS = {"R@1": "recall@1", "R@10": "recall@10", "R@50": "recall@50", "MRR@10": "mrr@10", "NDCG@10": "ndcg@10"}


@dataclass
class TrainSummary(StageSummary):
    """The train run's report (``training.pipeline`` ``RunReport.to_dict()``)."""

    title = "train"
    report: dict[str, object] = field(default_factory=dict)

    def rows(self) -> list[dict[str, object]]:
        """Test metrics of the model (serving-time, and with oracle labels where measured) and of every baseline."""
        metrics: dict = self.report["metrics"]  # type: ignore[assignment]
        baselines: dict = self.report["baselines"]  # type: ignore[assignment]
        oracle = {"model (oracle labels)": metrics["test_oracle_labels"]} if "test_oracle_labels" in metrics else {}
        contenders = {"model": metrics["test"], **oracle, **baselines}
        return [
            {"contender": name, "protocol": protocol, **{label: m[key] for label, key in _METRICS.items()}}
            for name, per_protocol in contenders.items()
            for protocol, m in per_protocol.items()
        ]

    def notes(self) -> list[str]:
        """Where the model went, whether it was promoted, and the inputs it did without."""
        r = self.report
        lines = [
            f"model {r['model_name']} v{r['version']} at {r['artifact_dir']}; "
            f"promoted: {r['promoted']} ({r['promotion_reason']})"
        ]
        skipped = r.get("skipped") or {}
        return lines + [f"skipped {name}: {reason}" for name, reason in sorted(skipped.items())]  # type: ignore[union-attr]

    @property
    def version(self) -> int:
        """The registered version."""
        return int(self.report["version"])  # type: ignore[call-overload]

    @property
    def promoted(self) -> bool:
        """Whether the new version became production."""
        return bool(self.report["promoted"])


def _epoch_artifact() -> Callable[[dict[str, float]], None]:
    rows: list[dict[str, float]] = []

    def publish_epoch(row: dict[str, float]) -> None:
        rows.append({k: round(v, 4) for k, v in row.items()})
        get_run_logger().info(
            "epoch %d: loss %.4f, valid recall@10 %.4f", row["epoch"], row["loss"], row["valid_standard_recall@10"]
        )
        create_table_artifact(list(rows), key="train-epochs", description="per-epoch loss and validation metrics")

    return publish_epoch


def run(settings: TrainSettings, context: StageContext) -> TrainSummary:
    """Train + evaluate + export + register a graph-prompt recommender."""
    summary = TrainSummary(train_stage(settings, context, on_epoch=_epoch_artifact()))
    publish(summary, key="train-metrics", description="test metrics")
    return summary
