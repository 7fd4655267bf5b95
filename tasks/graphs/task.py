"""Prefect face of the graph stage: a statistics artifact per run."""

from __future__ import annotations

from prefect import get_run_logger

from tasks.graphs.config import GraphsSettings
from tasks.graphs.stage import GraphsSummary, build_graphs
from tasks.settings import StageContext
from tasks.task import publish


def run(settings: GraphsSettings, context: StageContext) -> GraphsSummary:
    """Build the graphs whose inputs or parameters changed (all of them with ``force``)."""
    summary = build_graphs(
        lake=context.lake, config=settings.graphs_config(), run_id=context.run_id, force=settings.force
    )
    logger = get_run_logger()
    for row in summary.rows():
        logger.info("graph built: %s", row)
    publish(summary, key="graph-stats", description="item graphs: statistics per build")
    return summary
