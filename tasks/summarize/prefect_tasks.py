"""Prefect tasks of the summarize stage: thin wrappers that add progress, logs and artifacts to the cores."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from tasks.progress import prefect_progress
from tasks.retry import retry_transient
from tasks.summarize.backends.factory import BackendSpec, create_backend
from tasks.summarize.items import summarize_items
from tasks.summarize.preferences import summarize_preferences
from tasks.summarize.stage import SummarizeConfig, SummarizeSummary


def _publish(summary: SummarizeSummary, key: str) -> None:
    """Log the counts and publish a sample of the summaries as a markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    get_run_logger().info(
        "summarize %s with %s: %d wanted, %d cached, %d generated, %d written, %d quarantined %s, images: %s "
        "(%.1f s)", summary.what, summary.model_id, summary.candidates, summary.cached, summary.generated,
        summary.written, summary.quarantined, summary.quarantine_reasons or "", summary.images, summary.elapsed_s)
    lines = [f"# {summary.what} summaries ({summary.model_id})", "",
             f"{summary.written} written, {summary.cached} cached, {summary.quarantined} quarantined.", ""]
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
    spec: BackendSpec, config: SummarizeConfig, lake: str | None = None, item_ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> dict[str, object]:
    """Prefect task: item summaries (text, plus posters when the backend takes images)."""
    summary = summarize_items(backend=create_backend(spec), lake=lake, config=config, item_ids=item_ids,
                              limit=limit, run_id=_run_id(),
                              progress=prefect_progress("summarize-items-progress", "items summarised"))
    _publish(summary, "summarize-items")
    return summary.to_dict()


@task(name="summarize-preferences", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient)
def summarize_preferences_task(
    spec: BackendSpec, config: SummarizeConfig, lake: str | None = None, dialogue_ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> dict[str, object]:
    """Prefect task: recurrent preference summaries, one per (dialogue, recommendation turn)."""
    summary = summarize_preferences(backend=create_backend(spec), lake=lake, config=config,
                                    dialogue_ids=dialogue_ids, limit=limit, run_id=_run_id(),
                                    progress=prefect_progress("summarize-preferences-progress",
                                                               "dialogues summarised"))
    _publish(summary, "summarize-preferences")
    return summary.to_dict()


@task(name="summarize-sample")
def dialogue_sample_task(lake: str | None = None, limit: int | None = None) -> dict[str, object]:
    """Prefect task: the dialogues (and the items they mention) a limited run summarises."""
    from tasks.summarize.preferences import dialogue_sample

    return dialogue_sample(lake=lake, limit=limit)
