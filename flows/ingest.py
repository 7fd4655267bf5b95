"""The ingest flow: a catalog and/or a dialogue file into the lake, with a summary artifact."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

import features
from tasks.ingest.catalog import ingest_catalog_task
from tasks.ingest.dialogues import ingest_dialogues_task


def summary_markdown(results: dict[str, dict[str, object]]) -> str:
    """A markdown table of ingest counts (one row per input) plus quarantine reasons."""
    lines = ["| input | file | read | written | updated | unchanged | quarantined |", "|---|---|---|---|---|---|---|"]
    reasons: list[str] = []
    for name, s in results.items():
        lines.append(
            f"| {name} | `{s['source_file']}` | {s['read']} | {s['written']} | {s['updated']} | "
            f"{s['unchanged']} | {s['quarantined']} |"
        )
        quarantine = s.get("quarantine_reasons") or {}
        assert isinstance(quarantine, dict)
        reasons += [f"- {name}: {reason} — {count}" for reason, count in sorted(quarantine.items())]
    if reasons:
        lines += ["", "**Quarantined by reason**", "", *reasons]
    return "\n".join(lines)


DIALOGUES_EVENT = "mmcrs.dialogues.ingested"


def emit_dialogues_landed(summary: dict[str, object], lake: str | None) -> bool:
    """Emit ``mmcrs.dialogues.ingested`` (lake, table versions, counts in the payload) when new dialogues
    landed; the ``retrain-on-dialogues`` deployment's trigger listens for it. Returns whether it emitted."""
    new = int(summary.get("written") or 0) + int(summary.get("updated") or 0)  # type: ignore[call-overload]
    if new == 0:
        return False
    resolved = features.resolve_lake(lake)
    versions = features.table_versions(["dialogues", "turns", "items"], lake=resolved)
    emit_event(
        event=DIALOGUES_EVENT,
        resource={"prefect.resource.id": f"mmcrs.lake.{resolved.root}", "prefect.resource.name": "mmcrs lake"},
        payload={
            "lake": resolved.root,
            "versions": versions,
            "new_dialogues": new,
            "source_file": str(summary.get("source_file")),
        },
    )
    return True


@flow(name="ingest", log_prints=True)
def ingest_flow(
    dialogues: str | None = None,
    dialogue_format: str | None = None,
    catalog: str | None = None,
    catalog_format: str | None = None,
    catalog_source: str = "catalog",
    lake: str | None = None,
    catalog_columns: dict[str, str] | None = None,
) -> dict[str, dict[str, object]]:
    """Ingest a catalog (first, so dialogue mentions can link to it) and/or a dialogue file."""
    results: dict[str, dict[str, object]] = {}
    if catalog:
        results["catalog"] = ingest_catalog_task(catalog, catalog_format, catalog_source, lake, catalog_columns)
    if dialogues:
        results["dialogues"] = ingest_dialogues_task(dialogues, dialogue_format, lake)
        emit_dialogues_landed(results["dialogues"], lake)
    if results:
        create_markdown_artifact(summary_markdown(results), key="ingest-summary", description="ingest counts")
    return results
