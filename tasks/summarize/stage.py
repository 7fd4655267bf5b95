"""Summarize stage cores: item summaries and recurrent preference summaries, cached by prompt hash.

Reader -> prompt builder -> backend (checked, retried once) -> writer, in batches that are committed one by
one, so a killed run keeps what it generated. A row's key carries ``model_id`` and ``prompt_hash``: a prompt
already answered by the same model (or quarantined for it) is never sent again, so a re-run generates nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

import features
from features import CommitInfo, Lake, QuarantineRecord
from tasks.summarize.backends import Backend, ChatPrompt
from tasks.summarize.checks import Checked, OutputChecks, generate_checked

STAGE = "summarize"
NO_SUMMARY = "(none yet)"
Progress = Callable[[int, int], None]


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
    """

    chunk_size: int = 3
    max_new_tokens: int = 64
    batch: int = 16
    item_template: str = "item_v1"
    preference_template: str = "preference_v2"
    item_checks: OutputChecks = field(default_factory=OutputChecks)
    preference_checks: OutputChecks = field(default_factory=lambda: OutputChecks(require_phrase="prefer"))
    sample_size: int = 5


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


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def batch_result(
    index: int,
    rows: list[dict[str, object]],
    failures: list[QuarantineRecord],
    *,
    size: int,
    counts: SummarizeSummary,
    model_loads: int,
) -> BatchResult:
    """One batch's result, with the generation counts gathered in ``counts``, generated by this process."""
    return BatchResult(index, rows, failures, size, counts.generated, counts.new_tokens, model_loads, worker_name())


def in_process(backend: BackendIdentity, generate: Callable[..., BatchResult]) -> BatchRunner:
    """A runner that generates every batch here, one after another, as ``generate(job, backend=backend)``."""
    if not isinstance(backend, Backend):
        raise TypeError("an in-process run needs a Backend that generates, not only its identity")

    def run(jobs: Iterable[Any]) -> Iterator[BatchResult]:
        return (generate(job, backend=backend) for job in jobs)

    return run


def merge_result(summary: SummarizeSummary, result: BatchResult, workers: set[str]) -> None:
    """Add one batch's generation counts to the run's summary."""
    summary.generated += result.generated
    summary.new_tokens += result.new_tokens
    summary.model_loads += result.model_loads
    if result.worker:
        workers.add(result.worker)


def _done_keys(table: str, source: str, model_id: str, lake: Lake, key: Callable[[dict[str, Any]], str]) -> set[str]:
    """Record keys already answered (rows of ``table``) or quarantined for this model."""
    columns = list(features.spec_for(table).keys)
    rows = features.read(table, columns=columns, missing="empty", lake=lake).filter(pl.col("model_id") == model_id)
    done = {key(r) for r in rows.collect().iter_rows(named=True)}
    quarantined = features.read("quarantine", columns=["source", "record_key"], missing="empty", lake=lake)
    return done | set(quarantined.filter(pl.col("source") == source).collect()["record_key"])


class _Writer:
    """Commits one batch: summaries to the output table, unusable answers to ``quarantine``."""

    def __init__(self, lake: Lake, commit: CommitInfo, summary: SummarizeSummary, sample_size: int) -> None:
        self.lake, self.commit, self.summary, self.sample_size = lake, commit, summary, sample_size

    def write(self, table: str, rows: list[dict[str, object]], failures: list[QuarantineRecord]) -> None:
        now = datetime.now(UTC)
        if rows:
            frame = pl.DataFrame([{**r, "generated_at": now} for r in rows])
            self._record(features.upsert(table, frame, commit=self.commit, lake=self.lake))
            self.summary.written += len(rows)
            room = self.sample_size - len(self.summary.sample)
            self.summary.sample.extend({k: v for k, v in r.items() if k != "model_id"} for r in rows[: max(room, 0)])
        if failures:
            result = features.quarantine(failures, commit=self.commit, lake=self.lake, at=now)
            if result is not None:
                self._record(result)
            for f in failures:
                category = f.reason.split(":")[0]
                self.summary.quarantine_reasons[category] = self.summary.quarantine_reasons.get(category, 0) + 1
            self.summary.quarantined += len(failures)

    def _record(self, result: features.WriteResult) -> None:
        if result.committed and result.version is not None:
            self.summary.versions[result.table] = result.version


def _batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _commit(lake: Lake, run_id: str | None, config: SummarizeConfig, model_id: str, inputs: list[str]) -> CommitInfo:
    return CommitInfo(
        stage=STAGE,
        flow_run_id=run_id,
        config_hash=features.config_hash({**asdict(config), "model_id": model_id}),
        input_versions=features.table_versions(inputs, lake=lake),
    )


def _generate(
    backend: Backend,
    prompts: list[ChatPrompt],
    checks: OutputChecks,
    config: SummarizeConfig,
    summary: SummarizeSummary,
) -> list[Checked]:
    def count(n: int) -> None:
        summary.generated += n

    results = generate_checked(
        backend, prompts, checks=checks, max_new_tokens=config.max_new_tokens, on_generated=count
    )
    summary.new_tokens += sum(r.new_tokens for r in results)
    return results


class _Run:
    """One summarizer run: its lake and options, its summary and clock, and the commit of every batch."""

    def __init__(
        self, what: str, backend: BackendIdentity, *, lake: Lake | str | None, config: SummarizeConfig | None, name: str
    ) -> None:
        self.started = time.perf_counter()
        self.lake, self.config, self.backend = features.resolve_lake(lake), config or SummarizeConfig(), backend
        self.summary = SummarizeSummary(what=what, model_id=backend.model_id, runner=name)
        self.skipped = 0  # items or dialogues of batches with nothing left to generate (never sent to a runner)

    @property
    def model_id(self) -> str:
        """The backend's ``model_id``."""
        return self.backend.model_id

    def done_keys(self, table: str, source: str, key: Callable[[dict[str, Any]], str]) -> set[str]:
        """Record keys already answered (rows of ``table``) or quarantined for this model."""
        return _done_keys(table, source, self.model_id, self.lake, key)

    def commit_batches(
        self,
        jobs: Iterable[Any],
        *,
        runner: BatchRunner | None,
        local: Callable[..., BatchResult],
        table: str,
        inputs: list[str],
        run_id: str | None,
        progress: Progress | None,
        total: int,
    ) -> SummarizeSummary:
        """Run the jobs (on ``runner``, else here with ``local``) and commit each result to ``table`` as it
        arrives; returns the run's summary."""
        run = runner or in_process(self.backend, local)
        commit = _commit(self.lake, run_id, self.config, self.model_id, inputs)
        writer = _Writer(self.lake, commit, self.summary, self.config.sample_size)
        done, workers = 0, set[str]()
        for result in run(jobs):
            merge_result(self.summary, result, workers)
            writer.write(table, result.rows, result.failures)
            done += result.size
            if progress:
                progress(done + self.skipped, total)
        self.summary.workers = sorted(workers) if runner else []
        self.summary.elapsed_s = round(time.perf_counter() - self.started, 3)
        return self.summary
