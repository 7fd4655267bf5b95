"""What one ingest of one input file did: the counts the catalog and the dialogue ingest share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from features import WriteResult


@dataclass
class InputSummary:
    """Counts of one input file's ingest: rows read, written, updated, unchanged and quarantined (by reason),
    and the table versions the ingest committed."""

    source_file: str
    read: int = 0
    written: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what a reader of the counts should know (e.g. no rows)

    def count_rejected(self, reason: str) -> None:
        """One more quarantined row, under ``reason`` (a category, not the full message)."""
        self.quarantined += 1
        self.quarantine_reasons[reason] = self.quarantine_reasons.get(reason, 0) + 1

    def record(self, result: WriteResult | None) -> None:
        """Note the table version a write committed (nothing for a write that committed nothing)."""
        if result is not None and result.committed and result.version is not None:
            self.versions[result.table] = result.version

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy."""
        return asdict(self)
