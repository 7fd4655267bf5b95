"""Prefect face of the embedding stage: retries on transient errors, progress and summary artifacts."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from tasks.embed.config import EmbedConfig
from tasks.embed.stage import EmbedSummary, embed
from tasks.progress import prefect_progress
from tasks.retry import retry_transient


def _summary_markdown(summary: EmbedSummary) -> str:
    lines = ["| modality | model_id | candidates | up to date | embedded | failed | truncated | items/s |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summary.modalities.values():
        lines.append(f"| {s.modality} | `{s.model_id}` | {s.candidates} | {s.up_to_date} | {s.embedded} | "
                     f"{s.failed} | {s.truncated} | {s.items_per_s} |")
    lines += [f"\n**Warning:** {w}" for w in summary.warnings]
    return "\n".join(lines)


@task(name="embed-items", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient)
def embed_task(lake: str | None = None, config: EmbedConfig | None = None) -> dict[str, object]:
    """Prefect task: embed what is missing; logs per-modality counts, publishes a summary artifact."""
    from prefect.artifacts import create_markdown_artifact

    run_id = flow_run.get_id()
    summary = embed(lake=lake, config=config, run_id=str(run_id) if run_id else None,
                    progress=prefect_progress("embed-progress", "items embedded"))
    logger = get_run_logger()
    for warning in summary.warnings:
        logger.warning(warning)
    for s in summary.modalities.values():
        logger.info("embed %s (%s): %d candidates, %d up to date, %d embedded, %d failed, %d truncated, %.1f items/s",
                    s.modality, s.model_id, s.candidates, s.up_to_date, s.embedded, s.failed, s.truncated,
                    s.items_per_s)
    create_markdown_artifact(_summary_markdown(summary), key="embed-summary", description="embedding run")
    return summary.to_dict()
