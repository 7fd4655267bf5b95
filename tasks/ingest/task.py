"""Prefect face of the ingest stage: the catalog, then the dialogues; counts as an artifact, an event when
new dialogues land (the ``retrain-on-dialogues`` deployment's trigger listens for it, on its own lake's
resource ``mmcrs.lake.<lake root>``). A run that also runs the stages after ingest (the nightly,
``ci retrain``) emits no event: it retrains on the new dialogues itself."""

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


def lake_resource_id(lake: Lake) -> str:
    """The event resource of a lake: ``mmcrs.lake.<lake root>`` (what a deployment trigger matches)."""
    return f"mmcrs.lake.{lake.root}"


def should_announce(summary: IngestStageSummary, context: StageContext) -> bool:
    """True when new dialogues landed and no stage after ingest runs in the same run."""
    return summary.new_dialogues() > 0 and not context.runs_later_stages


def emit_dialogues_landed(summary: IngestStageSummary, context: StageContext) -> bool:
    """Emit ``mmcrs.dialogues.ingested`` (lake, table versions, counts in the payload) when
    ``should_announce``; returns whether it emitted."""
    if not should_announce(summary, context):
        return False
    lake, new = context.lake, summary.new_dialogues()
    versions = features.table_versions(["dialogues", "turns", "items"], lake=lake)
    emit_event(
        event=DIALOGUES_EVENT,
        resource={"prefect.resource.id": lake_resource_id(lake), "prefect.resource.name": "mmcrs lake"},
        payload={
            "lake": lake.root,
            "versions": versions,
            "new_dialogues": new,
            "source_file": str(summary.inputs["dialogues"].get("source_file")),
        },
    )
    return True


def run(settings: IngestSettings, context: StageContext) -> IngestStageSummary:
    """Ingest the catalog and / or the dialogues; emit the event when new dialogues landed and this run
    does not run the stages after ingest itself."""
    summary = ingest(settings, lake=context.lake, run_id=context.run_id)
    emit_dialogues_landed(summary, context)
    logger = get_run_logger()
    for row in summary.rows():
        logger.info("%s", row)
    if summary.inputs:
        publish(summary, key="ingest-summary", description="ingest counts")
    return summary
