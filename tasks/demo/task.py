"""Prefect face of the demo inputs: build them as a task run, and say which dialogues are used."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from tasks.demo.stage import DemoConfig, build_demo_inputs


@task(name="build-demo-inputs")
def build_demo_inputs_task(workdir: str, config: DemoConfig) -> dict[str, str]:
    """Prefect task: build the demo inputs; logs which dialogues are used."""
    inputs = build_demo_inputs(workdir=Path(workdir), config=config)
    log = get_run_logger()
    log.info("demo catalog: %s items (%s enriched) -> %s", inputs["n_items"], inputs["n_enriched"], inputs["catalog"])
    if inputs["dialogue_source"] == "synthetic":
        log.warning("no ReDial file found (../shared/data/redial): using synthetic MovieLens dialogues")
    log.info("demo dialogues (%s): %s", inputs["dialogue_source"], inputs["dialogues"])
    return inputs
