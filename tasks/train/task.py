"""Train stage: the plain ``training.pipeline.train_and_register`` plus a reuse check, and its Prefect task.

A run whose config, code and input table versions are unchanged since the last successful train run does
nothing and returns that run's report (``reused_run`` names it), so a nightly run with no new data is cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from prefect import get_run_logger, task
from prefect.runtime import flow_run

import features
from features import Lake
from features.runs import StageRun, now_utc, record_run, reusable_run
from training.data import INPUT_TABLES
from training.pipeline import DEFAULT_MODEL_NAME, train_and_register
from training.registry import PromotionRule
from training.train import TrainConfig

STAGE = "train_model"  # its own reuse record; the DAG records the "train" stage
WATCHED = list(INPUT_TABLES)


def _fingerprint(config: TrainConfig, model_name: str, artifacts_root: str | None) -> str:
    return features.config_hash(
        {
            "config": config.model_dump(mode="json"),
            "model_name": model_name,
            "artifacts_root": artifacts_root,
            "code": features.code_version(),
        }
    )


def train_stage(
    config: TrainConfig,
    *,
    lake: Lake | str | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    artifacts_root: str | None = None,
    rule: PromotionRule | None = None,
    auto_promote: bool = True,
    force: bool = False,
    run_id: str | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, object]:
    """Train, evaluate, export, register (and maybe promote) one model version; returns the run report."""
    resolved, started = features.resolve_lake(lake), now_utc()
    if features.table_version("turns", resolved) is None:
        raise ValueError(f"no turns table in {resolved.root}: ingest dialogues first")
    fingerprint = _fingerprint(config, model_name, artifacts_root)
    if not force and (row := reusable_run(STAGE, fingerprint, watched=WATCHED, lake=resolved)):
        return json.loads(str(row["counts"])) | {"reused_run": row["run_id"]}
    report = train_and_register(
        config,
        lake=resolved,
        model_name=model_name,
        artifacts_root=artifacts_root,
        rule=rule,
        auto_promote=auto_promote,
        on_epoch=on_epoch,
        run_id=run_id,
    ).to_dict()
    record_run(
        StageRun(
            stage=STAGE,
            fingerprint=fingerprint,
            status="ok",
            flow_run_id=run_id,
            config_hash=features.config_hash(config),
            input_versions=report["input_versions"],
            output_versions=features.table_versions(WATCHED, resolved),
            counts=report,
            started_at=started,
            duration_s=(now_utc() - started).total_seconds(),
        ),
        lake=resolved,
    )
    return report


def _epoch_artifact() -> Callable[[dict[str, float]], None]:
    from prefect.artifacts import create_table_artifact

    rows: list[dict[str, float]] = []

    def publish(row: dict[str, float]) -> None:
        rows.append({k: round(v, 4) for k, v in row.items()})
        get_run_logger().info(
            "epoch %d: loss %.4f, valid recall@10 %.4f", row["epoch"], row["loss"], row["valid_standard_recall@10"]
        )
        create_table_artifact(list(rows), key="train-epochs", description="per-epoch loss and validation metrics")

    return publish


def _metrics_markdown(report: dict) -> str:
    lines = ["| contender | protocol | R@1 | R@10 | R@50 | MRR@10 | NDCG@10 |", "|---|---|---|---|---|---|---|"]
    for name, metrics in {"model": report["metrics"]["test"], **report["baselines"]}.items():
        for protocol, m in metrics.items():
            lines.append(
                f"| {name} | {protocol} | {m['recall@1']:.4f} | {m['recall@10']:.4f} | {m['recall@50']:.4f}"
                f" | {m['mrr@10']:.4f} | {m['ndcg@10']:.4f} |"
            )
    skipped = "".join(f"\n- {k}: {v}" for k, v in sorted(report["skipped"].items()))
    return (
        f"# {report['model_name']} v{report['version']}\n\nartifacts: `{report['artifact_dir']}`; promoted: "
        f"{report['promoted']} ({report['promotion_reason']})\n\n" + "\n".join(lines) + f"\n\nskipped:{skipped}"
    )


@task(name="train-model")
def train_task(
    config: dict | None = None,
    lake: str | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    artifacts_root: str | None = None,
    auto_promote: bool = True,
    force: bool = False,
) -> dict[str, object]:
    """Prefect task: train + evaluate + export + register; per-epoch table and final metrics as artifacts."""
    from prefect.artifacts import create_markdown_artifact

    run_id = flow_run.get_id()
    report = train_stage(
        TrainConfig.from_dict(config or {}),
        lake=lake,
        model_name=model_name,
        artifacts_root=artifacts_root or os.environ.get("MMCRS_ARTIFACTS"),
        auto_promote=auto_promote,
        force=force,
        run_id=str(run_id) if run_id else None,
        on_epoch=_epoch_artifact(),
    )
    logger = get_run_logger()
    skipped = report["skipped"]
    assert isinstance(skipped, dict)
    for name, reason in sorted(skipped.items()):
        logger.info("skipped %s: %s", name, reason)
    if "reused_run" in report:
        logger.info("inputs and config unchanged since run %s: nothing to train", report["reused_run"])
    else:
        create_markdown_artifact(_metrics_markdown(report), key="train-metrics", description="test metrics")
    return report
