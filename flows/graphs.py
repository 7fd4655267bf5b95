"""The graph flow: kNN graphs per embedding set, co-mention and transition graphs, as versioned edge tables."""

from __future__ import annotations

from prefect import flow

from tasks.graphs.stage import GraphsConfig
from tasks.graphs.task import graphs_task


@flow(name="graphs", log_prints=True)
def graphs_flow(
    lake: str | None = None,
    graphs: list[str] | None = None,
    k: int | None = None,
    backend: str | None = None,
    force: bool = False,
) -> dict[str, object]:
    """Build the graphs (all by default) whose inputs or parameters changed since their last build."""
    overrides: dict[str, object] = {"graphs": tuple(graphs) if graphs else None, "k": k, "backend": backend}
    config = GraphsConfig(**{key: v for key, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    return graphs_task(lake, config, force)
