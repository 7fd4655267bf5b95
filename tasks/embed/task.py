"""Prefect face of the embedding stage: retries on transient errors, progress and summary artifacts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

import features
from features import Lake
from tasks.embed.config import EmbedConfig
from tasks.embed.stage import EmbedSummary, ShardJob, ShardResult, embed, encode_shard
from tasks.progress import prefect_progress
from tasks.retry import retry_transient
from tasks.scale import submit_jobs


def _summary_markdown(summary: EmbedSummary) -> str:
    lines = [
        "| modality | model_id | candidates | up to date | embedded | failed | truncated | items/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary.modalities.values():
        lines.append(
            f"| {s.modality} | `{s.model_id}` | {s.candidates} | {s.up_to_date} | {s.embedded} | "
            f"{s.failed} | {s.truncated} | {s.items_per_s} |"
        )
    lines += [f"\n**Warning:** {w}" for w in summary.warnings]
    return "\n".join(lines)


def _publish(summary: EmbedSummary) -> dict[str, object]:
    from prefect.artifacts import create_markdown_artifact

    logger = get_run_logger()
    for warning in summary.warnings:
        logger.warning(warning)
    for s in summary.modalities.values():
        logger.info(
            "embed %s (%s): %d candidates, %d up to date, %d embedded, %d failed, %d truncated, %.1f items/s",
            s.modality,
            s.model_id,
            s.candidates,
            s.up_to_date,
            s.embedded,
            s.failed,
            s.truncated,
            s.items_per_s,
        )
    if summary.workers:
        logger.info(
            "embed ran on %d workers (%s), %d model loads",
            len(summary.workers),
            ", ".join(summary.workers),
            summary.model_loads,
        )
    create_markdown_artifact(_summary_markdown(summary), key="embed-summary", description="embedding run")
    return summary.to_dict()


@task(name="embed-items", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient)
def embed_task(lake: str | None = None, config: EmbedConfig | None = None) -> dict[str, object]:
    """Prefect task: embed what is missing; logs per-modality counts, publishes a summary artifact."""
    run_id = flow_run.get_id()
    summary = embed(
        lake=lake,
        config=config,
        run_id=str(run_id) if run_id else None,
        progress=prefect_progress("embed-progress", "items embedded"),
    )
    return _publish(summary)


# NO_CACHE: a shard is never answered from a cache (its inputs are planned fresh each run), and the job's
# rows and the lake's storage options are not hashed or recorded for a cache key.
@task(name="embed-shard", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def embed_shard_task(job: ShardJob, config: EmbedConfig, lake: Lake) -> ShardResult:
    """Prefect task (runs on a task-runner worker): encode one shard and return its vectors; writes nothing."""
    return encode_shard(job, config=config, lake=lake)


def embed_sharded(
    lake: str | Lake | None = None,
    config: EmbedConfig | None = None,
    *,
    max_in_flight: int = 8,
    runner_name: str = "task runner",
) -> dict[str, object]:
    """Embed what is missing with every shard as an ``embed-shard`` task run on the flow's task runner.

    Call inside a flow whose task runner is the scale-out one (``flows.runners``); this process plans,
    submits at most ``max_in_flight`` shards ahead, and commits each returned shard (see ``tasks.embed.stage``).
    The workers receive the resolved lake (root URI and storage options), never a path to resolve again.
    """
    resolved, cfg = features.resolve_lake(lake), config or EmbedConfig()

    def run(jobs: Iterable[ShardJob]) -> Iterator[ShardResult]:
        return submit_jobs(
            embed_shard_task,
            jobs,
            lambda job: {"job": job, "config": cfg, "lake": resolved},
            max_in_flight=max_in_flight,
        )

    run_id = flow_run.get_id()
    summary = embed(
        lake=resolved,
        config=cfg,
        run_id=str(run_id) if run_id else None,
        progress=prefect_progress("embed-progress", "items embedded"),
        runner=run,
        runner_name=runner_name,
    )
    return _publish(summary)
