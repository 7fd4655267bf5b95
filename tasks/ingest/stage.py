"""The ingest stage's core: the catalog first (so dialogue mentions link to its items), then the dialogues."""

from __future__ import annotations

from dataclasses import dataclass, field

from features import Lake
from tasks.ingest.catalog import ingest_catalog
from tasks.ingest.config import IngestSettings
from tasks.ingest.dialogues import ingest_dialogues
from tasks.ingest.enrich import RULES, Enricher
from tasks.summary import StageSummary, reason_notes

_COUNTS = ("read", "written", "updated", "unchanged", "quarantined")


@dataclass
class IngestStageSummary(StageSummary):
    """Counts per input (``catalog``, ``dialogues``): each input's own summary as a dict."""

    title = "ingest"
    inputs: dict[str, dict[str, object]] = field(default_factory=dict)
    enrichment: dict[str, object] | None = None  # the MatchReport of ``enrich_with``, when set

    def rows(self) -> list[dict[str, object]]:
        """One row per input: read, written, updated, unchanged, quarantined."""
        return [{"input": name, **{c: s[c] for c in _COUNTS}} for name, s in self.inputs.items()]

    def notes(self) -> list[str]:
        """Each input's own notes (e.g. no rows), then its quarantine reasons."""
        lines = [str(note) for s in self.inputs.values() for note in s.get("notes") or []]  # type: ignore[attr-defined]
        lines += [line for name, s in self.inputs.items() for line in reason_notes(name, s.get("quarantine_reasons"))]
        return lines + enrichment_notes(self.enrichment)

    def new_dialogues(self) -> int:
        """Dialogues written or updated by this run."""
        s = self.inputs.get("dialogues") or {}
        return int(s.get("written") or 0) + int(s.get("updated") or 0)  # type: ignore[call-overload]


def enrichment_notes(report: dict[str, object] | None) -> list[str]:
    """The match report as notes: the counts, then a few unmatched items (none without a report)."""
    if not report or not report.get("items"):
        return []
    rules = report.get("by_rule") or {}
    counts = ", ".join(f"{rule} {rules.get(rule, 0)}" for rule in RULES)  # type: ignore[union-attr]
    line = f"enriched from {report['source']}: {report['matched']} of {report['items']} items"
    examples = list(report.get("unmatched_examples") or [])[:5]  # type: ignore[call-overload]
    unmatched = [f"unmatched, e.g.: {'; '.join(map(str, examples))}"] if examples else []
    return [f"{line} ({100 * float(report['rate']):.1f} %; {counts})", *unmatched]  # type: ignore[arg-type]


def ingest(settings: IngestSettings, *, lake: Lake, run_id: str | None = None) -> IngestStageSummary:
    """Ingest the catalog and / or the dialogue file the settings name, enriching the items they write
    from ``enrich_with`` when set; returns the counts per input and the match report."""
    summary = IngestStageSummary()
    wanted = settings.enrich_with and (settings.catalog or settings.dialogues)
    enricher = Enricher.load(settings.enrich_with) if wanted else None
    if settings.catalog:
        summary.inputs["catalog"] = ingest_catalog(
            settings.catalog,
            fmt=settings.catalog_format,
            source=settings.catalog_source,
            columns=settings.catalog_columns or None,
            lake=lake,
            run_id=run_id,
            enricher=enricher,
        ).to_dict()
    if settings.dialogues:
        report = ingest_dialogues(
            settings.dialogues, fmt=settings.dialogue_format, lake=lake, run_id=run_id, enricher=enricher
        )
        summary.inputs["dialogues"] = report.to_dict()
    if enricher is not None:
        summary.enrichment = enricher.report.to_dict()
    return summary
