"""What a stage run reports: one typed summary per stage, rendered once for every reader.

A summary says what it did as ``rows()`` (a table: one dict per input, modality, graph, ...) and
``notes()`` (lines below the table: quarantine reasons, warnings, what was skipped). ``to_markdown()`` turns
both into the Prefect artifact; the CLI prints the same rows and notes; ``to_dict()`` is what
``pipeline_runs.counts`` stores.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import ClassVar


def cell(value: object) -> str:
    """One table cell as text: floats rounded (4 decimals below 1, else 1), None empty."""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.1f}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[Mapping[str, object]]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (columns from the first row, in order)."""
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def reason_notes(label: str, reasons: Mapping[str, object] | None) -> list[str]:
    """``quarantined (label): reason: count`` lines, sorted by reason."""
    return [f"quarantined ({label}): {reason}: {count}" for reason, count in sorted((reasons or {}).items())]


@dataclasses.dataclass
class StageSummary:
    """Base of the stages' summaries (dataclasses): override ``rows`` and ``notes``."""

    title: ClassVar[str] = "stage"

    def rows(self) -> list[dict[str, object]]:
        """The summary as table rows (may be empty)."""
        return []

    def notes(self) -> list[str]:
        """Lines printed below the table."""
        return []

    def retry_next_run(self) -> bool:
        """True when the run ended with failures worth trying again on the next run (transient ones)."""
        return False

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def to_markdown(self) -> str:
        """The Prefect artifact: a title, the table, the notes."""
        parts = [f"## {self.title}", markdown_table(self.rows())]
        notes = self.notes()
        if notes:
            parts.append("\n".join(f"- {line}" for line in notes))
        return "\n\n".join(p for p in parts if p)
