"""Prefect tasks of the summarize stage: thin wrappers that add progress, logs and artifacts to the cores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

import features
from features import Lake
from tasks.progress import prefect_progress
from tasks.retry import retry_transient
from tasks.scale import submit_jobs
from tasks.summarize.backends import Backend
from tasks.summarize.backends.factory import BackendSpec, create_backend
from tasks.summarize.items import ItemJob, generate_item_batch, summarize_items
from tasks.summarize.preferences import PreferenceJob, advance_preference_batch, summarize_preferences
from tasks.summarize.stage import BackendInfo, BatchResult, SummarizeConfig, SummarizeSummary


def _publish(summary: SummarizeSummary, key: str) -> None:
    """Log the counts and publish a sample of the summaries as a markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    get_run_logger().info(
        "summarize %s with %s: %d wanted, %d cached, %d generated, %d written, %d quarantined %s, images: %s (%.1f s)",
        summary.what,
        summary.model_id,
        summary.candidates,
        summary.cached,
        summary.generated,
        summary.written,
        summary.quarantined,
        summary.quarantine_reasons or "",
        summary.images,
        summary.elapsed_s,
    )
    if summary.workers:
        get_run_logger().info(
            "summarize %s ran on %d workers (%s), %d model loads",
            summary.what,
            len(summary.workers),
            ", ".join(summary.workers),
            summary.model_loads,
        )
    lines = [
        f"# {summary.what} summaries ({summary.model_id})",
        "",
        f"{summary.written} written, {summary.cached} cached, {summary.quarantined} quarantined.",
        "",
    ]
    if summary.what == "preferences" and summary.dialogues < summary.dialogues_total:
        lines += [f"A sample of {summary.dialogues} of {summary.dialogues_total} dialogues was summarised.", ""]
    for row in summary.sample:
        head = row.get("item_id") or f"{row.get('dialogue_id')} before turn {row.get('upto_turn')}"
        lines.append(f"- **{head}**: {row['summary']}")
    create_markdown_artifact("\n".join(lines), key=f"{key}-sample", description=f"sample of {summary.what} summaries")


def _run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


@task(name="summarize-items", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient)
def summarize_items_task(
    spec: BackendSpec,
    config: SummarizeConfig,
    lake: str | None = None,
    item_ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> dict[str, object]:
    """Prefect task: item summaries (text, plus posters when the backend takes images)."""
    summary = summarize_items(
        backend=create_backend(spec),
        lake=lake,
        config=config,
        item_ids=item_ids,
        limit=limit,
        run_id=_run_id(),
        progress=prefect_progress("summarize-items-progress", "items summarised"),
    )
    _publish(summary, "summarize-items")
    return summary.to_dict()


@task(name="summarize-preferences", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient)
def summarize_preferences_task(
    spec: BackendSpec,
    config: SummarizeConfig,
    lake: str | None = None,
    dialogue_ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> dict[str, object]:
    """Prefect task: recurrent preference summaries, one per (dialogue, recommendation turn)."""
    summary = summarize_preferences(
        backend=create_backend(spec),
        lake=lake,
        config=config,
        dialogue_ids=dialogue_ids,
        limit=limit,
        run_id=_run_id(),
        progress=prefect_progress("summarize-preferences-progress", "dialogues summarised"),
    )
    _publish(summary, "summarize-preferences")
    return summary.to_dict()


@task(name="summarize-sample")
def dialogue_sample_task(lake: str | None = None, limit: int | None = None) -> dict[str, object]:
    """Prefect task: the dialogues (and the items they mention) a limited run summarises."""
    from tasks.summarize.preferences import dialogue_sample

    return dialogue_sample(lake=lake, limit=limit)


# --- scale-out: batches as task runs on the flow's task runner (e.g. Dask); this process commits ---------


def _worker_backend(spec: BackendSpec) -> tuple[Backend, int]:
    """The backend of this worker process (``create_backend`` caches it: loaded once) and 1 if loaded now."""
    before = create_backend.cache_info().misses
    backend = create_backend(spec)
    return backend, create_backend.cache_info().misses - before


@task(
    name="summarize-backend-info",
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def backend_info_task(spec: BackendSpec) -> BackendInfo:
    """Prefect task (on a worker): the backend's ``model_id``, so that the planning process loads no weights."""
    backend, _ = _worker_backend(spec)
    return BackendInfo(backend.model_id, backend.accepts_images)


@task(
    name="summarize-item-batch",
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def item_batch_task(job: ItemJob, spec: BackendSpec, config: SummarizeConfig, lake: Lake) -> BatchResult:
    """Prefect task (on a worker): generate one batch of item summaries; writes nothing."""
    backend, loads = _worker_backend(spec)
    return generate_item_batch(job, backend=backend, config=config, lake=lake, model_loads=loads)


@task(
    name="summarize-preference-batch",
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def preference_batch_task(job: PreferenceJob, spec: BackendSpec, config: SummarizeConfig) -> BatchResult:
    """Prefect task (on a worker): run one batch of dialogues' recurrent chains; writes nothing."""
    backend, loads = _worker_backend(spec)
    return advance_preference_batch(job, backend=backend, config=config, model_loads=loads)


def summarize_sharded(
    spec: BackendSpec,
    config: SummarizeConfig,
    lake: str | Lake | None = None,
    *,
    what: str = "both",
    limit: int | None = None,
    max_in_flight: int = 4,
    runner_name: str = "task runner",
) -> dict[str, object]:
    """The summarize flow's work with every batch as a task run on the flow's task runner (call in a flow).

    Same semantics as the in-process tasks (``what``: items | preferences | both, ``limit``); the backend loads
    on the workers only (``create_backend`` caches it per process), and this process commits every batch.
    Items go first and are complete before the preference chains are planned (they read the item summaries).
    """
    resolved = features.resolve_lake(lake)
    info = backend_info_task.submit(spec).result()
    run_id, result = _run_id(), {}

    def items_runner(jobs: Iterable[ItemJob]) -> Iterator[BatchResult]:
        return submit_jobs(
            item_batch_task,
            jobs,
            lambda job: {"job": job, "spec": spec, "config": config, "lake": resolved},
            max_in_flight=max_in_flight,
        )

    def preferences_runner(jobs: Iterable[PreferenceJob]) -> Iterator[BatchResult]:
        return submit_jobs(
            preference_batch_task,
            jobs,
            lambda job: {"job": job, "spec": spec, "config": config},
            max_in_flight=max_in_flight,
        )

    def items(item_ids: Sequence[str] | None, item_limit: int | None) -> dict[str, object]:
        summary = summarize_items(
            backend=info,
            lake=resolved,
            config=config,
            item_ids=item_ids,
            limit=item_limit,
            run_id=run_id,
            runner=items_runner,
            runner_name=runner_name,
            progress=prefect_progress("summarize-items-progress", "items summarised"),
        )
        _publish(summary, "summarize-items")
        return summary.to_dict()

    if what == "items":
        return {"items": items(None, limit)}
    if what == "both":
        from tasks.summarize.preferences import dialogue_sample

        sample: dict[str, Any] = dialogue_sample(lake=resolved, limit=limit)
        result["items"] = items(sample["item_ids"], None)
    summary = summarize_preferences(
        backend=info,
        lake=resolved,
        config=config,
        limit=limit,
        run_id=run_id,
        runner=preferences_runner,
        runner_name=runner_name,
        progress=prefect_progress("summarize-preferences-progress", "dialogues summarised"),
    )
    _publish(summary, "summarize-preferences")
    result["preferences"] = summary.to_dict()
    return result
