"""What the summarize stage's cores share: their options, their counts, a backend's identity, and what one batch
produces (see ``tasks.summarize.batches`` for how batches run and are committed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from features import QuarantineRecord
from tasks.progress import Progress
from tasks.summarize.checks import OutputChecks

STAGE = "summarize"


@dataclass(frozen=True)
class SummarizeConfig:
    """Options of both summarizers.

    Attributes:
        chunk_size: history items per recurrent step (MLLM-MSR uses 3).
        max_new_tokens: cap of one answer.
        batch: prompts per backend call (items) or dialogues per batch (preferences); each batch is one commit.
        item_template / preference_template: prompt template names under ``tasks/summarize/prompts``;
            ``preference_v2`` (default) is conversational (one chat per chain, KV-cache reuse on the local
            backend), ``preference_v1`` quotes the previous summary in each step's prompt.
        item_checks / preference_checks: what a usable answer looks like.
        sample_size: summaries shown in the run artifact.
        labels: preference prompts show the turns' liked / seen labels; False summarises from what was said
            and mentioned only (what a deployed recommender knows; ReDial's labels come from a questionnaire).
        final_points: summarise each dialogue's last recommendation point; False skips it (in a finished
            dialogue no later recommendation reads it: a sample reads the latest summary before its turn).
    """

    chunk_size: int = 3
    max_new_tokens: int = 64
    batch: int = 16
    item_template: str = "item_v1"
    preference_template: str = "preference_v2"
    item_checks: OutputChecks = field(default_factory=OutputChecks)
    preference_checks: OutputChecks = field(default_factory=lambda: OutputChecks(require_phrase="prefer"))
    sample_size: int = 5
    labels: bool = False
    final_points: bool = True


@dataclass
class SummarizeSummary:
    """Counts of one summarizer run."""

    what: str
    model_id: str
    candidates: int = 0  # rows wanted
    cached: int = 0  # already in the lake or quarantined before: not generated
    generated: int = 0  # prompts sent to the backend, retries included
    written: int = 0
    quarantined: int = 0
    no_history: int = 0  # recommendation points with nothing before them
    new_tokens: int = 0
    dialogues: int = 0  # dialogues summarised (preferences)
    dialogues_total: int = 0  # dialogues with a recommendation point
    images: str = "not used"
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, object]] = field(default_factory=list)
    elapsed_s: float = 0.0
    runner: str = "in-process"
    workers: list[str] = field(default_factory=list)  # scale-out: the workers that generated batches
    model_loads: int = 0  # scale-out: backend loads on the workers (at most one per worker)

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy."""
        return asdict(self)


class BackendIdentity(Protocol):
    """What the planning side needs to know of a backend (a ``Backend`` is one; so is ``BackendInfo``)."""

    model_id: str
    accepts_images: bool


@dataclass(frozen=True)
class BackendInfo:
    """A backend's identity without its weights: what a scale-out caller plans with (the workers generate)."""

    model_id: str
    accepts_images: bool


@dataclass
class BatchResult:
    """What one batch produced (worker side of the scale-out path): rows and quarantine rows, not yet written.

    Attributes:
        index: the batch's position in the run.
        rows: output-table rows (without ``generated_at``).
        failures: the answers that failed their checks, for ``quarantine``.
        size: items or dialogues the batch covered (progress).
        generated / new_tokens: backend prompts sent (retries included) and tokens generated.
        model_loads: backends this batch had to load (0 once its worker holds the model).
        worker: ``host:pid`` of the process that generated it.
    """

    index: int
    rows: list[dict[str, object]]
    failures: list[QuarantineRecord]
    size: int
    generated: int = 0
    new_tokens: int = 0
    model_loads: int = 0
    worker: str = ""


BatchRunner = Callable[[Iterable[Any]], Iterable[BatchResult]]
"""Runs batch jobs somewhere (e.g. Prefect tasks on a Dask cluster), yields their results as they finish."""


@dataclass(frozen=True)
class RunOptions:
    """Where a summarizer run's batches are generated and how the run reports.

    Attributes:
        runner: scale-out: runs each batch job elsewhere (e.g. Prefect tasks on a Dask cluster) and yields the
            results as they finish; this process commits each. None generates here, batch by batch.
        runner_name: how the summary names the runner.
        run_id: flow run id recorded in the commits.
        progress: called with (done, total) after each committed batch.
    """

    runner: BatchRunner | None = None
    runner_name: str = "in-process"
    run_id: str | None = None
    progress: Progress | None = None
