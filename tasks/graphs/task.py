"""Prefect face of the graph stage: retries on transient errors, a statistics artifact per run."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from tasks.graphs.stage import GraphsConfig, GraphsSummary, build_graphs
from tasks.retry import retry_transient

_COLUMNS = (
    "nodes",
    "edges",
    "isolated",
    "degree_mean",
    "degree_p50",
    "degree_p90",
    "degree_max",
    "mean_neighbour_similarity",
    "seconds",
)


def _rows(summary: GraphsSummary) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"graph": g, "status": "built", **{c: stats.get(c, "") for c in _COLUMNS}} for g, stats in summary.built.items()
    ]
    rows += [
        {"graph": g, "status": f"skipped: {why}", **dict.fromkeys(_COLUMNS, "")} for g, why in summary.skipped.items()
    ]
    return rows


@task(name="build-graphs", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_transient)
def graphs_task(lake: str | None = None, config: GraphsConfig | None = None, force: bool = False) -> dict[str, object]:
    """Prefect task: build the graphs whose inputs or parameters changed; publishes their statistics."""
    from prefect.artifacts import create_table_artifact

    run_id = flow_run.get_id()
    summary = build_graphs(lake=lake, config=config, run_id=str(run_id) if run_id else None, force=force)
    logger = get_run_logger()
    for graph, stats in summary.built.items():
        logger.info("graph %s built: %s", graph, {c: stats.get(c) for c in _COLUMNS if c in stats})
    for graph, why in summary.skipped.items():
        logger.info("graph %s skipped: %s", graph, why)
    create_table_artifact(_rows(summary), key="graph-stats", description="item graphs: statistics per build")
    return summary.to_dict()
