"""Settings of the run report: where it goes, which artifacts and which flow run it covers."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.settings import StageSettings


@dataclass(frozen=True)
class ReportSettings(StageSettings):
    """What a user sets for one report.

    Attributes:
        out_dir: the report folder (``report.md``, ``report.html``, the PNGs).
        artifacts_root: where model artifacts live (None: the run's artifacts root).
        flow_run_id: only the stage runs of this flow run (None: the latest run of each stage).
    """

    out_dir: str = "report"
    artifacts_root: str | None = None
    flow_run_id: str | None = None
