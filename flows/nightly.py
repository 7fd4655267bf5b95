"""The nightly DAG: ingest -> crawl -> summarize -> embed -> graphs -> train (train evaluates and exports).

Each stage runs as a subflow (the same flows the CLI runs one by one). Before a stage starts, the DAG checks
``pipeline_runs``: when a successful run of that stage had the same parameters, input files and code, and
no table it reads or writes has changed since, the stage is skipped without starting its subflow — so a
night with nothing new finishes in seconds and writes no table version at all (skipped stages get their
``pipeline_runs`` rows only when some other stage of the run did something).
A stage is retried on transient errors (I/O, timeouts, CUDA out of memory), never on bad data; when one
fails, the stages after it do not run and the flow fails. A re-run after a failure skips the stages that
finished. One pipeline writer per lake: a second run waits ``lock_wait_s`` for the lake lock, then refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

import features
from features.lock import lake_lock
from flows.stages import run_stage, skip_reason
from tasks.settings import StageContext, StageSettings
from tasks.stages import RetryPolicy, StageRecord, parse_settings, record, stage_names, stage_spec
from tasks.summary import StageSummary


@dataclass
class PipelineResult:
    """What a pipeline run did.

    Attributes:
        records: one record per stage considered, in DAG order (ok, skipped or failed).
        versions: every table's version after the run.
        report: the run report's path (None when nothing ran or no report was asked for).
    """

    records: list[StageRecord] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    report: str | None = None

    @property
    def stages(self) -> dict[str, dict[str, object]]:
        """Per stage: status and counts (``pipeline_runs.counts``)."""
        return {r.name: {"status": r.status, **r.counts()} for r in self.records}

    @property
    def results(self) -> dict[str, StageSummary]:
        """The summaries of the stages that ran."""
        return {r.name: r.summary for r in self.records if r.status == "ok" and r.summary is not None}

    def status(self, name: str) -> str | None:
        """A stage's status in this run (None when it was not part of it)."""
        return next((r.status for r in self.records if r.name == name), None)


def stage_settings(
    settings: Mapping[str, Mapping[str, Any]] | None, ingest: Mapping[str, Any] | None = None
) -> dict[str, StageSettings]:
    """Every stage's validated settings: ``settings[stage]``, with the ingest files given as flow arguments
    (``ingest``) over the ingest section; raises ``ValueError`` before anything runs."""
    given = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (settings or {}).items()}
    files = {k: v for k, v in (ingest or {}).items() if v is not None}
    if files:
        given["ingest"] = {**given.get("ingest", {}), **files}
    return parse_settings(given)


def run_stages(
    chosen: list[str],
    settings: Mapping[str, StageSettings],
    context: StageContext,
    *,
    force: bool = False,
    retry: RetryPolicy | None = None,
    lock_wait_s: float = 0.0,
) -> tuple[list[StageRecord], BaseException | None]:
    """The chosen stages in DAG order under the lake lock; stops at the first failure (returned, not raised).
    Skipped stages get their ``pipeline_runs`` rows only when some stage of the run did something, so a run
    with nothing new writes no table version at all."""
    records: list[StageRecord] = []
    error: BaseException | None = None
    with lake_lock(context.lake, wait_s=lock_wait_s):
        for name in (n for n in stage_names() if n in chosen):
            try:
                records.append(run_stage(stage_spec(name), settings[name], context, force=force, retry=retry))
            except Exception as exc:  # recorded by run_stage; the stages after it cannot run
                error = exc
                break
        skipped = [r for r in records if r.status == "skipped"]
        if len(skipped) < len(records):
            record(skipped, lake=context.lake, flow_run_id=context.run_id)
    return records, error


@flow(name="nightly", log_prints=True)
def nightly_flow(
    lake: str | None = None,
    dialogues: str | None = None,
    catalog: str | None = None,
    dialogue_format: str | None = None,
    catalog_format: str | None = None,
    catalog_source: str | None = None,
    stages: list[str] | None = None,
    force: bool = False,
    settings: dict[str, dict[str, Any]] | None = None,
    artifacts_root: str | None = None,
    report_dir: str | None = None,
    lock_wait_s: float = 0.0,
    retries: int | None = None,
    retry_delay_s: float | None = None,
    report: bool = True,
) -> PipelineResult:
    """The whole pipeline, or the ``stages`` named, on one lake.

    Args:
        lake: lake root (default: ``MMCRS_LAKE``, ``mmcrs.toml``, ``./lake``).
        dialogues / catalog / dialogue_format / catalog_format / catalog_source: the ingest stage's input
            (over ``settings["ingest"]``); with no input file the ingest stage is skipped.
        stages: stages to run, in DAG order (default: all).
        force: start every stage even when nothing it depends on changed (each stage still does only what
            is missing; to recompute, pass a stage's own force, e.g. ``{"graphs": {"force": True}}``).
        settings: per-stage settings, e.g. ``{"embed": {"clip_model": "random:mmcrs-tiny@0"}}``; an unknown
            stage, key or type fails before anything runs.
        artifacts_root: where model artifacts go (default ``MMCRS_ARTIFACTS``, else ``<lake>/_artifacts``).
        report_dir: where the run report goes (default ``<lake>/_reports/<flow run id>`` on a local lake,
            ``./reports/<flow run id>`` otherwise); written only when some stage did something.
        lock_wait_s: how long to wait when another pipeline run holds the lake.
        retries / retry_delay_s: override every stage's retry policy (transient errors only).
        report: write the run report when some stage did something.

    Returns:
        The ``PipelineResult``; a failed stage's error is raised after its record and the report are written.
    """
    chosen = list(stages or stage_names())
    for name in chosen:
        stage_spec(name)  # unknown names fail before anything runs
    files = {"dialogues": dialogues, "catalog": catalog, "dialogue_format": dialogue_format}
    files |= {"catalog_format": catalog_format, "catalog_source": catalog_source}
    parsed = stage_settings(settings, files)
    run_id = str(flow_run.get_id() or "local")
    resolved = features.Settings.resolve(lake=lake, artifacts_root=artifacts_root)
    artifacts = None if resolved.artifacts_root is None else str(resolved.artifacts_root)
    context = StageContext(resolved.lake, run_id, artifacts)
    retry = None if retries is None else RetryPolicy(retries, 5.0 if retry_delay_s is None else retry_delay_s)
    records, error = run_stages(chosen, parsed, context, force=force, retry=retry, lock_wait_s=lock_wait_s)
    path = None
    if report:
        from tasks.report.task import publish_report

        path = publish_report(context, records, _report_dir(context.lake, run_id, report_dir))
    if error is not None:
        raise error
    return PipelineResult(records, features.table_versions(sorted(features.TABLES), lake=context.lake), path)


def _report_dir(lake: features.Lake, run_id: str, report_dir: str | None) -> Path:
    if report_dir:
        return Path(report_dir)
    return (Path(lake.root) / "_reports" if lake.is_local else Path.cwd() / "reports") / run_id


def run_one(
    name: str,
    settings: Mapping[str, Any] | None = None,
    *,
    lake: str | None = None,
    force: bool = False,
    artifacts_root: str | None = None,
) -> StageRecord:
    """Run one stage through the nightly runner (lake lock, skip rule, ``pipeline_runs``), without a report.

    Example:
        >>> record = run_one("graphs", {"k": 20}, lake="./lake")  # doctest: +SKIP
        >>> record.status, record.summary.rows()  # doctest: +SKIP
    """
    result = nightly_flow(
        lake=lake,
        stages=[name],
        settings={name: dict(settings or {})},
        force=force,
        artifacts_root=artifacts_root,
        report=False,
    )
    return next(r for r in result.records if r.name == name)


def plan(
    *,
    lake: str | None = None,
    stages: list[str] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    **ingest: str | None,
) -> list[tuple[str, str]]:
    """What a run would do, without doing it: ``(stage, "run" | "skip: <why>")`` in DAG order.

    A stage after one that would run may still be reported as a skip: it runs only if that stage changes
    one of its tables, which is known only once it has run.
    """
    chosen = list(stages or stage_names())
    for name in chosen:
        stage_spec(name)
    parsed = stage_settings(settings, ingest)
    context = StageContext(features.resolve_lake(lake))
    out = []
    for name in (n for n in stage_names() if n in chosen):
        reason = skip_reason(stage_spec(name), parsed[name], context, force=force)
        out.append((name, "run" if reason is None else f"skip: {reason}"))
    return out
