"""Stage runs in ``pipeline_runs``, and the rule that lets an unchanged stage do nothing.

A stage fingerprints its inputs (file content, config, code version) and, when done, records the run with
the versions of the tables it watches. Next time, ``reusable_run`` finds a successful run with the same
fingerprint whose recorded table versions are still the current ones: nothing it read or wrote has
changed since, so the stage can skip without reading its input again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from features.commits import CommitInfo
from features.lake import Lake
from features.read import history, read
from features.store import table_versions
from features.write import append


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class StageRun:
    """One finished stage run, as recorded in ``pipeline_runs``."""

    stage: str
    fingerprint: str
    status: str
    flow_run_id: str | None = None
    config_hash: str | None = None
    input_versions: Mapping[str, int] = field(default_factory=dict)
    output_versions: Mapping[str, int] = field(default_factory=dict)
    counts: Mapping[str, object] = field(default_factory=dict)
    started_at: datetime | None = None
    duration_s: float | None = None


def _row(run: StageRun, run_id: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "stage": run.stage,
        "status": run.status,
        "flow_run_id": run.flow_run_id,
        "fingerprint": run.fingerprint,
        "input_versions": json.dumps(dict(run.input_versions), sort_keys=True),
        "output_versions": json.dumps(dict(run.output_versions), sort_keys=True),
        "counts": json.dumps(dict(run.counts), sort_keys=True, default=str),
        "config_hash": run.config_hash,
        "started_at": run.started_at,
        "duration_s": run.duration_s,
    }


def record_runs(runs: list[StageRun], *, lake: Lake | str | None = None) -> list[str]:
    """Append ``pipeline_runs`` rows in one commit (exactly once, via an app transaction); returns their ids."""
    if not runs:
        return []
    run_ids = [str(uuid.uuid4()) for _ in runs]
    first = runs[0]
    commit = CommitInfo(
        stage=first.stage if len(runs) == 1 else "pipeline",
        flow_run_id=first.flow_run_id,
        config_hash=first.config_hash if len(runs) == 1 else None,
        input_versions=first.input_versions if len(runs) == 1 else {},
    )
    frame = pl.DataFrame(
        [_row(r, i) for r, i in zip(runs, run_ids, strict=True)],
        schema_overrides={"started_at": pl.Datetime("us", "UTC")},
    )
    append("pipeline_runs", frame, commit=commit, app_id=f"pipeline_runs/{run_ids[0]}", lake=lake)
    return run_ids


def record_run(run: StageRun, *, lake: Lake | str | None = None) -> str:
    """Append one ``pipeline_runs`` row (exactly once, via an app transaction); returns its run id."""
    return record_runs([run], lake=lake)[0]


def _only_ignored_commits(
    table: str, since: int | None, until: int | None, ignore_stages: Collection[str], lake: Lake | str | None
) -> bool:
    """True when every commit of ``table`` after version ``since`` up to ``until`` came from an ignored stage."""
    if until is None or not ignore_stages:
        return False
    newer = history(table, lake=lake).filter(pl.col("version") > (-1 if since is None else since))
    return newer.height > 0 and newer["stage"].is_in(list(ignore_stages)).all()


def latest_run(stage: str, *, fingerprint: str | None = None, lake: Lake | str | None = None) -> dict | None:
    """The latest successful ``pipeline_runs`` row of ``stage`` (with that fingerprint, when given), or None."""
    keep = (pl.col("stage") == stage) & (pl.col("status") == "ok")
    if fingerprint is not None:
        keep &= pl.col("fingerprint") == fingerprint
    runs = read("pipeline_runs", missing="empty", lake=lake).filter(keep)
    found = runs.sort("started_at", descending=True).head(1).collect()
    return found.row(0, named=True) if found.height else None


def changed_tables(
    row: Mapping[str, object],
    *,
    watched: list[str],
    ignore_stages: Collection[str] = (),
    lake: Lake | str | None = None,
) -> dict[str, tuple[int | None, int | None]]:
    """Watched tables whose version moved since a run recorded them, by commits other than ``ignore_stages``'s:
    ``{table: (recorded version, current version)}``."""
    recorded = json.loads(str(row["output_versions"] or "{}"))
    current = table_versions(watched, lake=lake)
    return {
        t: (recorded.get(t), current.get(t))
        for t in watched
        if recorded.get(t) != current.get(t)
        and not _only_ignored_commits(t, recorded.get(t), current.get(t), ignore_stages, lake)
    }


def reusable_run(
    stage: str,
    fingerprint: str,
    *,
    watched: list[str],
    ignore_stages: Collection[str] = (),
    lake: Lake | str | None = None,
) -> dict[str, object] | None:
    """The latest successful run of ``stage`` with this fingerprint, if the watched tables are unchanged since.

    Args:
        stage: stage name.
        fingerprint: hash of everything the stage's output depends on.
        watched: tables the stage reads or writes; their current versions must equal those recorded,
            except for commits made by ``ignore_stages`` since.
        ignore_stages: stages whose commits cannot change this stage's result (e.g. the crawl setting
            ``items.poster_sha256`` does not change what a dialogue ingest links to).
        lake: lake root.

    Returns:
        The ``pipeline_runs`` row, or None when the stage must run.
    """
    row = latest_run(stage, fingerprint=fingerprint, lake=lake)
    if row is None or changed_tables(row, watched=watched, ignore_stages=ignore_stages, lake=lake):
        return None
    return row


def now_utc() -> datetime:
    """The current time in UTC (what ``started_at`` records)."""
    return datetime.now(UTC)
