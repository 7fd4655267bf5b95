"""Prefect face of the demo inputs: build them as a task run, and say which dialogues are used."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from tasks.demo.stage import build_demo_inputs


@task(name="build-demo-inputs")
def build_demo_inputs_task(
    workdir: str,
    items: int | None = None,
    synthetic_dialogues: int = 500,
    use_redial: bool = True,
    poster_base_url: str | None = None,
) -> dict[str, str]:
    """Prefect task: build the demo inputs; logs which dialogues are used."""
    inputs = build_demo_inputs(
        workdir=Path(workdir),
        items=items,
        synthetic_dialogues=synthetic_dialogues,
        use_redial=use_redial,
        poster_base_url=poster_base_url,
    )
    log = get_run_logger()
    log.info("demo catalog: %s items (%s enriched) -> %s", inputs["n_items"], inputs["n_enriched"], inputs["catalog"])
    if inputs["dialogue_source"] == "synthetic":
        log.warning("no ReDial file found (../shared/data/redial): using synthetic MovieLens dialogues")
    log.info("demo dialogues (%s): %s", inputs["dialogue_source"], inputs["dialogues"])
    return inputs
