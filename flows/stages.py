"""Running one registered stage: skip it when nothing it depends on changed, else run its entry as a subflow
named after the stage, with the registry's retry policy as Prefect task retries, and record the run.

Every way of running a stage comes here: the nightly DAG, ``mmcrs run <stage>`` and the per-stage commands
(``mmcrs embed`` ...). The subflow and its task take no parameters (they close over the settings and the
context), so no storage option or secret ever lands in Prefect's database as a run parameter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.cache_policies import NO_CACHE

import features
from features.runs import now_utc
from tasks.settings import StageContext, StageSettings
from tasks.stages import (
    RetryPolicy,
    StageRecord,
    StageSpec,
    measure,
    quarantined_since,
    record,
    retry_transient,
    skip_reason,
    stage_fingerprint,
)
from tasks.summary import StageSummary


def _run_subflow(
    spec: StageSpec, settings: StageSettings, context: StageContext, retry: RetryPolicy, attempts: list[int]
) -> StageSummary:
    """Run the stage's entry as a task (retried by ``retry``) in a subflow; counts attempts in ``attempts``."""
    entry = spec.load_entry()

    def body() -> StageSummary:
        attempts[0] += 1
        return entry(settings, context)

    body.__name__ = spec.name.replace("-", "_")
    stage_task = task(
        body,
        name=f"{spec.name}-stage",
        retries=retry.retries,
        retry_delay_seconds=retry.delays() or 0,
        retry_condition_fn=retry_transient,
        cache_policy=NO_CACHE,
    )

    def stage_flow() -> StageSummary:
        get_run_logger().info("stage %s with %s", spec.name, settings.given() or "default settings")
        return stage_task()

    stage_flow.__name__ = body.__name__
    with tags(*(("gpu",) if spec.gpu else ())):
        summary = flow(stage_flow, name=spec.name, log_prints=True)()
    if not isinstance(summary, spec.summary_type()):
        raise TypeError(f"stage {spec.name} returned {type(summary).__name__}, its spec says {spec.summary}")
    return summary


@dataclass
class _Bookkeeping:
    """What a stage run records, whatever its outcome: fingerprint, start, versions before."""

    spec: StageSpec
    fingerprint: str
    before: dict[str, int]
    started: datetime = field(default_factory=now_utc)
    clock: float = field(default_factory=time.monotonic)

    def record(self, status: str, lake: features.Lake, **extra: Any) -> StageRecord:
        """The stage's record; versions after are read now unless given (``output_versions``)."""
        after = extra.pop("output_versions", None)
        if after is None:
            after = self.before if status == "skipped" else features.table_versions(self.spec.watched, lake=lake)
        inputs = {t: v for t, v in self.before.items() if t in self.spec.reads}
        elapsed = time.monotonic() - self.clock
        return StageRecord(self.spec.name, status, self.fingerprint, self.started, elapsed, inputs, after, **extra)


def run_stage(
    spec: StageSpec,
    settings: StageSettings,
    context: StageContext,
    *,
    force: bool = False,
    retry: RetryPolicy | None = None,
) -> StageRecord:
    """Run one stage (or skip it when nothing it depends on changed) and record it in ``pipeline_runs``.

    Args:
        spec: the stage.
        settings: its validated settings.
        context: the lake, the flow run, the artifacts root.
        force: run even when the stage could be skipped.
        retry: the retry policy (default: the stage's own, from the registry).

    Returns:
        The stage record: ``ok`` (recorded), or ``skipped`` (not recorded: the caller records skipped stages
        only when some stage of the run did something). A failed stage is recorded and its error re-raised.
    """
    lake = context.lake
    book = _Bookkeeping(spec, stage_fingerprint(spec, settings), features.table_versions(spec.watched, lake=lake))
    reason = skip_reason(spec, settings, context, force=force, fingerprint=book.fingerprint)
    if reason is not None:
        get_run_logger().info("stage %s skipped: %s", spec.name, reason)
        return book.record("skipped", lake, reason=reason)
    attempts = [0]
    try:
        summary = _run_subflow(spec, settings, context, retry or spec.retry, attempts)
    except Exception as exc:
        quarantined = quarantined_since(spec, book.started, lake=lake)
        reason = f"{type(exc).__name__}: {exc}"[:500]
        failed = book.record("failed", lake, reason=reason, attempts=attempts[0], quarantined=quarantined)
        record(failed, lake=lake, flow_run_id=context.run_id)
        raise
    after, rows_in, rows_out = measure(spec, book.before, lake=lake)
    done = book.record(
        "ok",
        lake,
        output_versions=after,
        rows_in=rows_in,
        rows_out=rows_out,
        quarantined=quarantined_since(spec, book.started, lake=lake),
        attempts=attempts[0],
        retry_next_run=summary.retry_next_run(),
        summary=summary,
    )
    record(done, lake=lake, flow_run_id=context.run_id)
    return done
