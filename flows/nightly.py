"""The nightly DAG: ingest -> crawl -> summarize -> embed -> graphs -> train (train evaluates and exports).

Each stage runs as a subflow (the same flows the CLI runs one by one). Before a stage starts, the DAG checks
``pipeline_runs``: when a successful run of that stage had the same parameters, input files and code, and
no table it reads or writes has changed since, the stage is skipped without starting its subflow — so a
night with nothing new finishes in seconds and writes no table version at all (skipped stages get their
``pipeline_runs`` rows only when some other stage of the run did something).
A stage is retried on transient errors (I/O, timeouts, CUDA out of memory), never on bad data; when one
fails, the stages after it do not run and the flow fails. A re-run after a failure skips the stages that
finished. One pipeline writer per lake: a second run waits ``lock_wait_s`` for the lake lock (a local
``flock``, and the lake's Prefect global concurrency limit, ``flows.lake_limit``, for writers on other
machines), then refuses.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

import features
from features.lock import lake_lock
from features.redact import refuse_url_credentials
from flows.lake_limit import lake_slot
from flows.plan import stage_settings
from flows.stages import run_stage
from tasks.settings import StageContext, StageSettings
from tasks.stages import (
    RetryPolicy,
    StageRecord,
    record,
    stage_names,
    stage_spec,
)
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


def run_stages(
    chosen: list[str],
    settings: Mapping[str, StageSettings],
    context: StageContext,
    *,
    force: bool = False,
    retry: RetryPolicy | None = None,
    lock_wait_s: float = 0.0,
    announce: bool = True,
) -> tuple[list[StageRecord], BaseException | None]:
    """The chosen stages in DAG order under the lake lock and the lake's global concurrency slot (both
    waited for up to ``lock_wait_s`` in all); stops at the first failure (returned, not raised).
    Skipped stages get their ``pipeline_runs`` rows only when some stage of the run did something, so a run
    with nothing new writes no table version at all. When stages after ingest run too, the ingest does not
    announce new dialogues (``StageContext.runs_later_stages``); nor when ``announce`` is off (the caller runs
    them next, as ``ci retrain`` does)."""
    order = [n for n in stage_names() if n in chosen]
    later = any(n != "ingest" for n in order) and "ingest" in order
    context = replace(context, runs_later_stages=later or not announce)
    records: list[StageRecord] = []
    error: BaseException | None = None
    started = time.monotonic()
    with lake_lock(context.lake, wait_s=lock_wait_s) as locked:
        left = max(0.0, lock_wait_s - (time.monotonic() - started))
        with lake_slot(context.lake, wait_s=left, free_stale=locked):
            for name in order:
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
    announce: bool = True,
) -> PipelineResult:
    """The whole pipeline, or the ``stages`` named, on one lake.

    Args:
        lake: lake root (default: ``MMCRS_LAKE``, ``mmcrs.toml``, ``./lake``).
        dialogues / catalog / dialogue_format / catalog_format / catalog_source: the ingest stage's input
            (over ``settings["ingest"]``); with no input file the ingest stage is skipped.
        stages: stages to run, in DAG order (default: all).
        force: start every stage even when nothing it depends on changed (each stage still does only what
            is missing; to recompute, pass a stage's own force, e.g. ``{"graphs": {"force": True}}``).
        settings: per-stage settings, e.g. ``{"embed": {"clip_model": "random:mmcrs-tiny@0"}}``, on top of
            the lake's stored settings (``<lake>/_settings/mmcrs.toml``); an unknown stage, key or type fails
            before anything runs.
        artifacts_root: where model artifacts go (default ``MMCRS_ARTIFACTS``, else ``<lake>/_artifacts``).
        report_dir: where the run report goes (default ``<lake>/_reports/<flow run id>`` on a local lake,
            ``./reports/<flow run id>`` otherwise); written only when some stage did something.
        lock_wait_s: how long to wait when another pipeline run holds the lake.
        retries / retry_delay_s: override every stage's retry policy (transient errors only).
        report: write the run report when some stage did something.
        announce: let an ingest-only run emit ``mmcrs.dialogues.ingested`` for new dialogues (off when the
            caller runs the later stages itself).

    Returns:
        The ``PipelineResult``; a failed stage's error is raised after its record and the report are written.
    """
    chosen = [stage_spec(name).name for name in stages or stage_names()]  # unknown names fail first
    files = {"dialogues": dialogues, "catalog": catalog, "dialogue_format": dialogue_format}
    files |= {"catalog_format": catalog_format, "catalog_source": catalog_source}
    context, parsed = _start(lake, artifacts_root, settings, files)
    run_id = str(context.run_id)
    retry = None if retries is None else RetryPolicy(retries, 5.0 if retry_delay_s is None else retry_delay_s)
    records, error = run_stages(
        chosen, parsed, context, force=force, retry=retry, lock_wait_s=lock_wait_s, announce=announce
    )
    path = None
    if report:
        from tasks.report.task import publish_report

        path = publish_report(context, records, _report_dir(context.lake, run_id, report_dir))
    if error is not None:
        raise error
    return PipelineResult(records, features.table_versions(sorted(features.TABLES), lake=context.lake), path)


def _start(
    lake: str | None, artifacts_root: str | None, settings: Mapping[str, Any] | None, files: Mapping[str, Any]
) -> tuple[StageContext, dict[str, StageSettings]]:
    """The run's context (locations resolved once, the flow run id) and every stage's validated settings."""
    resolved = features.Settings.resolve(lake=lake, artifacts_root=artifacts_root)
    parsed = stage_settings(settings, files, lake=resolved.lake)
    artifacts = None if resolved.artifacts_root is None else str(resolved.artifacts_root)
    return StageContext(resolved.lake, str(flow_run.get_id() or "local"), artifacts), parsed


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
    # Settings become the flow's parameters (stored by Prefect): a URL with a password is refused before that.
    refuse_url_credentials(settings or {}, where=f"settings of {name}")
    result = nightly_flow(
        lake=lake,
        stages=[name],
        settings={name: dict(settings or {})},
        force=force,
        artifacts_root=artifacts_root,
        report=False,
    )
    return next(r for r in result.records if r.name == name)
