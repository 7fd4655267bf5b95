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

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

import features
from features.lock import lake_lock
from features.runs import now_utc
from tasks.report.stage import run_markdown
from tasks.retry import is_transient
from tasks.stages import (
    STAGE_NAMES,
    StageRecord,
    measure,
    quarantined_since,
    record,
    reusable,
    stage_fingerprint,
    stage_spec,
)

TRANSIENT_CRAWL_REASONS = ("timeout", "HTTP 5", "HTTP 429", "connection", "connect")


# Stage flows are imported when a stage runs: a night where every stage skips never imports torch,
# transformers or open_clip (about 9 s of a cold start here).


def _run_ingest(lake: str, **params: Any) -> dict[str, object]:
    from flows.ingest import ingest_flow

    return ingest_flow(lake=lake, **params)


def _run_crawl(lake: str, **params: Any) -> dict[str, object]:
    from flows.crawl import crawl_flow

    return crawl_flow(lake=lake, **params)


def _run_summarize(lake: str, **params: Any) -> dict[str, object]:
    from flows.summarize import summarize_flow

    return summarize_flow(lake=lake, **params)


def _run_embed(lake: str, **params: Any) -> dict[str, object]:
    from flows.embed import embed_flow

    return embed_flow(lake=lake, **params)


def _run_graphs(lake: str, **params: Any) -> dict[str, object]:
    from flows.graphs import graphs_flow

    return graphs_flow(lake=lake, **params)


def _run_train(lake: str, **params: Any) -> dict[str, object]:
    from flows.train import train_flow

    return train_flow(lake=lake, **params)


RUNNERS: dict[str, Callable[..., dict[str, object]]] = {
    "ingest": _run_ingest,
    "crawl": _run_crawl,
    "summarize": _run_summarize,
    "embed": _run_embed,
    "graphs": _run_graphs,
    "train": _run_train,
}


def _retry_next_run(name: str, summary: object) -> bool:
    """A crawl that failed on timeouts / 5xx / 429 tries those URLs again next night."""
    if name != "crawl" or not isinstance(summary, dict):
        return False
    reasons = summary.get("quarantine_reasons") or {}
    return any(str(r).startswith(TRANSIENT_CRAWL_REASONS) for r in reasons)


def run_stage(
    name: str,
    params: Mapping[str, Any],
    *,
    lake: features.Lake,
    files: Mapping[str, str | None] | None = None,
    force: bool = False,
    retries: int = 2,
    retry_delay_s: float = 5.0,
    flow_run_id: str | None = None,
) -> StageRecord:
    """Run one stage (or skip it when nothing it depends on changed) and record it in ``pipeline_runs``.

    Args:
        name: a stage of ``tasks.stages.STAGES``.
        params: keyword arguments of the stage's flow (besides ``lake``).
        lake: the lake.
        files: input files whose content is part of the stage's fingerprint (ingest).
        force: run even when the stage could be skipped.
        retries: extra attempts after a transient error (never after bad data).
        retry_delay_s: first backoff delay, doubled per attempt.
        flow_run_id: the DAG's flow run, recorded with the row.

    Returns:
        The stage record: ``ok`` (recorded), or ``skipped`` (not recorded: the caller records skipped stages
        only when some stage of the run did something). A failed stage is recorded and its error re-raised.
    """
    logger = get_run_logger()
    spec = stage_spec(name)
    started, clock = now_utc(), time.monotonic()
    fingerprint = stage_fingerprint(name, params, files)
    before = features.table_versions(spec.watched, lake=lake)
    inputs = {t: v for t, v in before.items() if t in spec.reads}
    if not force and (row := reusable(name, fingerprint, lake=lake)) is not None:
        reason = f"inputs and config unchanged since run {row['run_id']}"
        logger.info("stage %s skipped: %s", name, reason)
        return StageRecord(
            name, "skipped", fingerprint, started, time.monotonic() - clock, inputs, before, reason=reason
        )
    attempt = 0
    while True:
        attempt += 1
        try:
            with tags(*(("gpu",) if spec.gpu else ())):
                summary = RUNNERS[name](lake.root, **params)
            break
        except Exception as exc:
            if is_transient(exc) and attempt <= retries:
                delay = retry_delay_s * 2 ** (attempt - 1)
                logger.warning(
                    "stage %s: transient error (%s: %s); attempt %d of %d in %.0f s",
                    name,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    retries + 1,
                    delay,
                )
                time.sleep(delay)
                continue
            after = features.table_versions(spec.watched, lake=lake)
            failed = StageRecord(
                name,
                "failed",
                fingerprint,
                started,
                time.monotonic() - clock,
                inputs,
                after,
                reason=f"{type(exc).__name__}: {exc}"[:500],
                attempts=attempt,
                quarantined=quarantined_since(spec, started, lake=lake),
            )
            record(failed, lake=lake, flow_run_id=flow_run_id)
            raise
    after, rows_in, rows_out = measure(spec, before, lake=lake)
    stage = StageRecord(
        name,
        "ok",
        fingerprint,
        started,
        time.monotonic() - clock,
        inputs,
        after,
        rows_in=rows_in,
        rows_out=rows_out,
        quarantined=quarantined_since(spec, started, lake=lake),
        attempts=attempt,
        retry_next_run=_retry_next_run(name, summary),
        summary=summary,
    )
    record(stage, lake=lake, flow_run_id=flow_run_id)
    return stage


def stage_params(settings: Mapping[str, Mapping[str, Any]] | None, artifacts_root: str | None) -> dict[str, dict]:
    """Per-stage flow parameters: ``settings[stage]`` over the defaults."""
    given = {k: dict(v) for k, v in (settings or {}).items()}
    unknown = set(given) - set(STAGE_NAMES)
    if unknown:
        raise ValueError(f"settings for unknown stages {sorted(unknown)}; stages: {', '.join(STAGE_NAMES)}")
    params = {name: given.get(name, {}) for name in STAGE_NAMES}
    if artifacts_root is not None:
        params["train"].setdefault("artifacts_root", artifacts_root)
    return params


@flow(name="nightly", log_prints=True)
def nightly_flow(
    lake: str | None = None,
    dialogues: str | None = None,
    catalog: str | None = None,
    dialogue_format: str | None = None,
    catalog_format: str | None = None,
    catalog_source: str = "catalog",
    stages: list[str] | None = None,
    force: bool = False,
    settings: dict[str, dict[str, Any]] | None = None,
    artifacts_root: str | None = None,
    report_dir: str | None = None,
    lock_wait_s: float = 0.0,
    retries: int = 2,
    retry_delay_s: float = 5.0,
) -> dict[str, object]:
    """The whole pipeline, or the ``stages`` named, on one lake.

    Args:
        lake: lake root (default: ``MMCRS_LAKE``, ``mmcrs.toml``, ``./lake``).
        dialogues: a dialogue file to ingest (ReDial JSONL / INSPIRED TSV); none: the ingest stage is skipped.
        catalog: an item catalog to ingest (CSV / JSONL / Parquet).
        dialogue_format: ``redial`` | ``inspired`` (default: detected).
        catalog_format: ``csv`` | ``jsonl`` | ``parquet`` (default: from the extension).
        catalog_source: the catalog's source name.
        stages: stages to run, in DAG order (default: all).
        force: start every stage's flow even when nothing it depends on changed (each stage still does only
            what is missing; to recompute, pass a stage's own force, e.g. ``{"graphs": {"force": True}}``).
        settings: per-stage flow parameters, e.g. ``{"embed": {"clip_model": "random:mmcrs-tiny@0"}}``.
        artifacts_root: where model artifacts go (default ``./artifacts`` or ``MMCRS_ARTIFACTS``).
        report_dir: where the run report goes (default ``<lake>/_reports/<flow run id>`` on a local lake,
            ``./reports/<flow run id>`` otherwise); written only when some stage did something.
        lock_wait_s: how long to wait when another pipeline run holds the lake.
        retries: extra attempts per stage on transient errors.
        retry_delay_s: the first retry's delay, doubled per attempt.

    Returns:
        ``{"stages": {name: status and counts}, "results": {name: the stage flow's summary, for stages that
        ran}, "versions": {table: version}, "report": report folder or None}``.
    """
    resolved = features.resolve_lake(lake)
    chosen = list(stages or STAGE_NAMES)
    for name in chosen:
        stage_spec(name)  # unknown names fail before anything runs
    params = stage_params(settings, artifacts_root)
    params["ingest"] |= {
        "dialogues": dialogues,
        "catalog": catalog,
        "dialogue_format": dialogue_format,
        "catalog_format": catalog_format,
        "catalog_source": catalog_source,
    }
    run_id = str(flow_run.get_id() or "local")
    records: list[StageRecord] = []
    error: BaseException | None = None
    with lake_lock(resolved, wait_s=lock_wait_s):
        for name in (n for n in STAGE_NAMES if n in chosen):
            if name == "ingest" and not (dialogues or catalog):
                records.append(StageRecord(name, "skipped", "", now_utc(), 0.0, {}, {}, reason="no input files given"))
                continue
            files = {"dialogues": dialogues, "catalog": catalog} if name == "ingest" else None
            try:
                records.append(
                    run_stage(
                        name,
                        params[name],
                        lake=resolved,
                        files=files,
                        force=force,
                        retries=retries,
                        retry_delay_s=retry_delay_s,
                        flow_run_id=run_id,
                    )
                )
            except Exception as exc:  # recorded by run_stage; the stages after it cannot run
                error = exc
                break
        skipped = [r for r in records if r.status == "skipped"]
        if len(skipped) < len(records):  # a night with nothing new writes no version, not even here
            record(skipped, lake=resolved, flow_run_id=run_id)
    report = _publish_report(resolved, records, run_id, report_dir, params["train"].get("artifacts_root"))
    if error is not None:
        raise error
    return {
        "stages": {r.name: {"status": r.status, **r.counts()} for r in records},
        "results": {r.name: r.summary for r in records if r.status == "ok"},
        "versions": features.table_versions(sorted(features.TABLES), lake=resolved),
        "report": report,
    }


def _report_dir(lake: features.Lake, run_id: str, report_dir: str | None) -> Path:
    if report_dir:
        return Path(report_dir)
    return (Path(lake.root) / "_reports" if lake.is_local else Path.cwd() / "reports") / run_id


def _publish_report(
    lake: features.Lake, records: list[StageRecord], run_id: str, report_dir: str | None, artifacts_root: str | None
) -> str | None:
    """The run's markdown artifact (stages, quarantine, model against production) and, when a stage did
    something, the run report with its plots (``tasks.report``); returns the report's path."""
    markdown = run_markdown(records, lake=lake, artifacts_root=artifacts_root)
    path: Path | None = None
    if any(r.status != "skipped" for r in records):
        from tasks.report import build_report  # matplotlib: only when there is something to plot

        try:
            path = build_report(
                lake, _report_dir(lake, run_id, report_dir), artifacts_root=artifacts_root, flow_run_id=run_id
            )
            markdown += (
                f"\n## Run report\n\n`{path}` and `{path.with_suffix('.html')}` (embedding maps, graph "
                "degree histograms, Recall@k against baselines).\n"
            )
        except Exception as exc:  # the report must never fail a run whose stages succeeded
            get_run_logger().warning("run report failed: %s: %s", type(exc).__name__, exc)
            markdown += f"\n## Run report\n\nNot written: {type(exc).__name__}: {exc}\n"
    else:
        markdown += "\n## Run report\n\nNothing ran, so no new report: the last one is still current.\n"
    create_markdown_artifact(markdown, key="nightly-run", description="nightly run: stages, quarantine, model")
    return None if path is None else str(path)
