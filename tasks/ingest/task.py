"""Prefect face of the ingest stage: the catalog, then the dialogues; counts as an artifact, an event when
new dialogues land (the ``retrain-on-dialogues`` deployment's trigger listens for it)."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.events import emit_event

import features
from features import Lake
from tasks.ingest.config import IngestSettings
from tasks.ingest.stage import IngestStageSummary, ingest
from tasks.settings import StageContext
from tasks.task import publish

DIALOGUES_EVENT = "mmcrs.dialogues.ingested"


def emit_dialogues_landed(summary: IngestStageSummary, lake: Lake) -> bool:
    """Emit ``mmcrs.dialogues.ingested`` (lake, table versions, counts in the payload) when new dialogues
    landed; returns whether it emitted."""
    new = summary.new_dialogues()
    if new == 0:
        return False
    versions = features.table_versions(["dialogues", "turns", "items"], lake=lake)
    emit_event(
        event=DIALOGUES_EVENT,
        resource={"prefect.resource.id": f"mmcrs.lake.{lake.root}", "prefect.resource.name": "mmcrs lake"},
        payload={
            "lake": lake.root,
            "versions": versions,
            "new_dialogues": new,
            "source_file": str(summary.inputs["dialogues"].get("source_file")),
        },
    )
    return True


def run(settings: IngestSettings, context: StageContext) -> IngestStageSummary:
    """Ingest the catalog and / or the dialogues; emit the event when new dialogues landed."""
    summary = ingest(settings, lake=context.lake, run_id=context.run_id)
    emit_dialogues_landed(summary, context.lake)
    logger = get_run_logger()
    for row in summary.rows():
        logger.info("%s", row)
    if summary.inputs:
        publish(summary, key="ingest-summary", description="ingest counts")
    return summary
