"""Prefect face of the ingest stage: the catalog, then the dialogues; counts as an artifact, an event when
new dialogues land (the ``retrain-on-dialogues`` deployment's trigger listens for it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import get_run_logger
from prefect.events import emit_event

import features
from features import Lake
from tasks.ingest.catalog import ingest_catalog
from tasks.ingest.config import IngestSettings
from tasks.ingest.dialogues import ingest_dialogues
from tasks.settings import StageContext
from tasks.summary import StageSummary, reason_notes
from tasks.task import publish

DIALOGUES_EVENT = "mmcrs.dialogues.ingested"
_COUNTS = ("read", "written", "updated", "unchanged", "quarantined")


@dataclass
class IngestSummary(StageSummary):
    """Counts per input (``catalog``, ``dialogues``): each input's own summary as a dict."""

    title = "ingest"
    inputs: dict[str, dict[str, object]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, object]]:
        """One row per input: read, written, updated, unchanged, quarantined."""
        return [{"input": name, **{c: s[c] for c in _COUNTS}} for name, s in self.inputs.items()]

    def notes(self) -> list[str]:
        """Quarantine reasons per input."""
        return [line for name, s in self.inputs.items() for line in reason_notes(name, s.get("quarantine_reasons"))]

    def new_dialogues(self) -> int:
        """Dialogues written or updated by this run."""
        s = self.inputs.get("dialogues") or {}
        return int(s.get("written") or 0) + int(s.get("updated") or 0)  # type: ignore[call-overload]


def emit_dialogues_landed(summary: IngestSummary, lake: Lake) -> bool:
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


def run(settings: IngestSettings, context: StageContext) -> IngestSummary:
    """Ingest the catalog (first, so dialogue mentions link to it) and/or the dialogue file."""
    summary, logger = IngestSummary(), get_run_logger()
    if settings.catalog:
        summary.inputs["catalog"] = ingest_catalog(
            settings.catalog,
            fmt=settings.catalog_format,
            source=settings.catalog_source,
            columns=settings.catalog_columns or None,
            lake=context.lake,
            run_id=context.run_id,
        ).to_dict()
    if settings.dialogues:
        summary.inputs["dialogues"] = ingest_dialogues(
            settings.dialogues, fmt=settings.dialogue_format, lake=context.lake, run_id=context.run_id
        ).to_dict()
        emit_dialogues_landed(summary, context.lake)
    for row in summary.rows():
        logger.info("%s", row)
    if summary.inputs:
        publish(summary, key="ingest-summary", description="ingest counts")
    return summary
