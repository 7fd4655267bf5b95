"""The demo flow: build demo inputs from packaged real data, then run the pipeline as far as it exists."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest_flow
from tasks.demo.stage import build_demo_inputs_task


@flow(name="demo", log_prints=True)
def demo_flow(
    lake: str | None = None,
    workdir: str = ".demo",
    items: int | None = None,
    synthetic_dialogues: int = 500,
    use_redial: bool = True,
) -> dict[str, object]:
    """Demo catalog (MovieLens-100K + CC0 movie database, rendered posters) and dialogues into the lake."""
    inputs = build_demo_inputs_task(workdir, items, synthetic_dialogues, use_redial)
    ingested = ingest_flow(
        dialogues=inputs["dialogues"], catalog=inputs["catalog"], catalog_source="movielens", lake=lake
    )
    return {"inputs": inputs, "ingest": ingested}
