"""Prefect face of the embedding stage: progress and summary artifacts, and the shards on a task runner.

``task_runner="dask"`` encodes the shards as ``embed-shard`` task runs on Dask workers (a subflow with the
Dask task runner); this process plans and commits. The default runs the stage in this process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features import Lake
from tasks.embed.config import EmbedConfig, EmbedSettings
from tasks.embed.stage import EmbedSummary, ShardJob, ShardResult, embed, encode_shard
from tasks.settings import StageContext
from tasks.task import dask_task_runner, prefect_progress, publish, submit_jobs


def _publish(summary: EmbedSummary) -> EmbedSummary:
    logger = get_run_logger()
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
    publish(summary, key="embed-summary", description="embedding run")
    return summary


# NO_CACHE: a shard is never answered from a cache (its inputs are planned fresh each run), and the job's
# rows and the lake's storage options are not hashed or recorded for a cache key. No retries of its own: a
# failed shard fails the stage, whose retry (the registry's policy) re-plans only what is still missing.
@task(name="embed-shard", cache_policy=NO_CACHE)
def embed_shard_task(job: ShardJob, config: EmbedConfig, lake: Lake) -> ShardResult:
    """Prefect task (runs on a task-runner worker): encode one shard and return its vectors; writes nothing."""
    return encode_shard(job, config=config, lake=lake)


def embed_sharded(
    context: StageContext, config: EmbedConfig, *, max_in_flight: int = 8, runner_name: str = "task runner"
) -> EmbedSummary:
    """Embed what is missing with every shard as an ``embed-shard`` task run on the flow's task runner.

    Call inside a flow whose task runner is the scale-out one; this process plans, submits at most
    ``max_in_flight`` shards ahead, and commits each returned shard (see ``tasks.embed.stage``). The workers
    receive the resolved lake (root URI and storage options), never a path to resolve again.
    """

    def run_jobs(jobs: Iterable[ShardJob]) -> Iterator[ShardResult]:
        return submit_jobs(
            embed_shard_task,
            jobs,
            lambda job: {"job": job, "config": config, "lake": context.lake},
            max_in_flight=max_in_flight,
        )

    summary = embed(
        lake=context.lake,
        config=config,
        run_id=context.run_id,
        progress=prefect_progress("embed-progress", "items embedded"),
        runner=run_jobs,
        runner_name=runner_name,
    )
    return _publish(summary)


def embed_sharded_flow(
    context: StageContext, config: EmbedConfig, *, task_runner: Any, max_in_flight: int = 8
) -> EmbedSummary:
    """Subflow on ``task_runner``: every shard is an ``embed-shard`` task; this process commits. The subflow
    takes no parameters (it closes over them), so the lake's storage options never land in Prefect's database."""

    def embed_sharded_run() -> EmbedSummary:
        return embed_sharded(context, config, max_in_flight=max_in_flight, runner_name="dask")

    return flow(embed_sharded_run, name="embed-sharded", log_prints=True, task_runner=task_runner)()


def run(settings: EmbedSettings, context: StageContext) -> EmbedSummary:
    """Embed the items that lack a vector for the chosen models (image, clip_text, text, summary)."""
    config = settings.embed_config()
    if settings.task_runner == "dask":
        runner = dask_task_runner(settings.dask_address, settings.dask_workers)
        return embed_sharded_flow(context, config, task_runner=runner, max_in_flight=2 * settings.dask_workers)
    summary = embed(
        lake=context.lake,
        config=config,
        run_id=context.run_id,
        progress=prefect_progress("embed-progress", "items embedded"),
    )
    return _publish(summary)
