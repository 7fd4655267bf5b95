"""Running one registered stage: skip it when nothing it depends on changed, else run its entry as a subflow
named after the stage, with the registry's retry policy as Prefect task retries, and record the run.

Every way of running a stage comes here: the nightly DAG, ``mmcrs run <stage>`` and the per-stage commands
(``mmcrs embed`` ...). The subflow and its task take no parameters (they close over the settings and the
context), so no storage option or secret ever lands in Prefect's database as a run parameter.
"""

from __future__ import annotations

import time

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
    reusable,
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
        return flow(stage_flow, name=spec.name, log_prints=True)()


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
    lake, logger = context.lake, get_run_logger()
    started, clock = now_utc(), time.monotonic()
    fingerprint = stage_fingerprint(spec, settings)
    before = features.table_versions(spec.watched, lake=lake)
    inputs = {t: v for t, v in before.items() if t in spec.reads}

    def stage_record(status: str, **extra: object) -> StageRecord:
        after = before if status == "skipped" else features.table_versions(spec.watched, lake=lake)
        return StageRecord(
            spec.name,
            status,
            fingerprint,
            started,
            time.monotonic() - clock,
            inputs,
            after,
            **extra,  # type: ignore[arg-type]
        )

    if spec.missing_inputs(settings):
        return stage_record("skipped", reason="no input files given")
    if not force and (row := reusable(spec.name, fingerprint, lake=lake)) is not None:
        reason = f"inputs and config unchanged since run {row['run_id']}"
        logger.info("stage %s skipped: %s", spec.name, reason)
        return stage_record("skipped", reason=reason)
    attempts = [0]
    try:
        summary = _run_subflow(spec, settings, context, retry or spec.retry, attempts)
    except Exception as exc:
        failed = stage_record(
            "failed",
            reason=f"{type(exc).__name__}: {exc}"[:500],
            attempts=attempts[0],
            quarantined=quarantined_since(spec, started, lake=lake),
        )
        record(failed, lake=lake, flow_run_id=context.run_id)
        raise
    after, rows_in, rows_out = measure(spec, before, lake=lake)
    done = StageRecord(
        spec.name,
        "ok",
        fingerprint,
        started,
        time.monotonic() - clock,
        inputs,
        after,
        rows_in=rows_in,
        rows_out=rows_out,
        quarantined=quarantined_since(spec, started, lake=lake),
        attempts=attempts[0],
        retry_next_run=summary.retry_next_run(),
        summary=summary,
    )
    record(done, lake=lake, flow_run_id=context.run_id)
    return done
