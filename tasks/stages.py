"""The stages of the nightly DAG as data: what each reads and writes, when it may skip, what it did.

A stage is skipped when a successful run of it had the same fingerprint (its parameters, its input files
and the code version) and none of the tables it reads or writes changed since — except by commits of the
stages after it, which cannot change its result (the crawl writing ``items.poster_sha256`` does not make
the ingest stale). Every stage run, skipped or not, is one ``pipeline_runs`` row: versions in and out,
rows read and written, quarantined records by reason, duration and status.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

import features
from features import Lake
from features.read import history, row_count
from features.runs import StageRun, file_sha256, record_runs, reusable_run


@dataclass(frozen=True)
class StageSpec:
    """One DAG stage.

    Attributes:
        name: stage name (``pipeline_runs.stage``).
        reads: tables the stage reads.
        writes: tables the stage writes (``quarantine`` left out: every stage appends to it).
        labels: the ``stage`` values its commits and quarantine rows carry.
        gpu: True when the stage benefits from a GPU (tagged for tag-based concurrency limits).
    """

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    labels: tuple[str, ...]
    gpu: bool = False

    @property
    def watched(self) -> list[str]:
        """Tables whose change makes the stage stale."""
        return sorted(set(self.reads) | set(self.writes))


STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        "ingest", reads=(), writes=("items", "dialogues", "turns"), labels=("ingest_catalog", "ingest_dialogues")
    ),
    StageSpec("crawl", reads=("items",), writes=("items", "poster_blobs", "poster_fetches"), labels=("crawl",)),
    # Summaries come before embedding: the ``summary`` modality embeds them.
    StageSpec(
        "summarize",
        reads=("items", "dialogues", "turns"),
        writes=("item_summaries", "preference_summaries"),
        labels=("summarize",),
        gpu=True,
    ),
    StageSpec(
        "embed",
        reads=("items", "poster_blobs", "item_summaries"),
        writes=("item_embeddings",),
        labels=("embed",),
        gpu=True,
    ),
    StageSpec("graphs", reads=("item_embeddings", "turns"), writes=("item_graph_edges",), labels=("graphs",)),
    StageSpec(
        "train",
        reads=("turns", "items", "item_graph_edges", "item_embeddings", "preference_summaries"),
        writes=("model_registry",),
        labels=("train",),
        gpu=True,
    ),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage_spec(name: str) -> StageSpec:
    """The spec of a stage; raises ``ValueError`` naming the known stages."""
    for spec in STAGES:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def downstream_labels(name: str) -> set[str]:
    """Commit labels of every stage after ``name``: their commits never make ``name`` stale."""
    names = list(STAGE_NAMES)
    return {label for spec in STAGES[names.index(name) + 1 :] for label in spec.labels}


def stage_fingerprint(name: str, params: Mapping[str, object], files: Mapping[str, str | None] | None = None) -> str:
    """Hash of a stage's parameters, the content of its input files and the code version."""
    hashed = {k: (file_sha256(Path(v)) if v and Path(v).is_file() else v) for k, v in (files or {}).items()}
    return features.config_hash(
        {"stage": name, "params": dict(params), "files": hashed, "code": features.code_version()}
    )


def reusable(name: str, fingerprint: str, *, lake: Lake) -> dict[str, object] | None:
    """The successful run this stage may reuse (nothing it depends on changed), or None when it must run."""
    spec = stage_spec(name)
    row = reusable_run(name, fingerprint, watched=spec.watched, ignore_stages=downstream_labels(name), lake=lake)
    if row is not None and json.loads(str(row["counts"] or "{}")).get("retry_next_run"):
        return None  # e.g. a crawl with transient failures: the next night tries them again
    return row


def _rows_written(table: str, before: int | None, after: int | None, lake: Lake) -> int:
    """Rows a table's commits in (before, after] added or changed, from Delta's operation metrics."""
    if after is None or after == before:
        return 0
    commits = history(table, lake=lake).filter(pl.col("version") > (-1 if before is None else before))
    total = 0
    for metrics in commits["metrics"].to_list():
        m = json.loads(metrics or "{}")
        if "num_added_rows" in m:
            total += int(m["num_added_rows"])
        else:
            total += sum(
                int(m.get(k, 0))
                for k in (
                    "num_target_rows_inserted",
                    "num_target_rows_updated",
                    "num_target_rows_deleted",
                    "num_deleted_rows",
                )
            )
    return total


def quarantined_since(spec: StageSpec, since: datetime, *, lake: Lake) -> dict[str, int]:
    """Quarantine rows this stage wrote (or refreshed) since ``since``, counted by reason."""
    frame = (
        features.read("quarantine", missing="empty", lake=lake)
        .filter(pl.col("quarantined_at") >= since)
        .select("stage", "reason")
        .collect()
    )
    labels = spec.labels
    reasons = Counter(r for s, r in frame.iter_rows() if any(s == lab or s.startswith(f"{lab}:") for lab in labels))
    return dict(sorted(reasons.items()))


@dataclass
class StageRecord:
    """What one stage run did, before it is written to ``pipeline_runs``."""

    name: str
    status: str  # ok | skipped | failed
    fingerprint: str
    started_at: datetime
    duration_s: float
    input_versions: dict[str, int]
    output_versions: dict[str, int]
    rows_in: int = 0
    rows_out: int = 0
    quarantined: dict[str, int] | None = None
    reason: str = ""
    attempts: int = 1
    retry_next_run: bool = False
    summary: object = None

    def counts(self) -> dict[str, object]:
        """The ``pipeline_runs.counts`` JSON."""
        quarantined = self.quarantined or {}
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "quarantined": sum(quarantined.values()),
            "quarantined_by_reason": quarantined,
            "reason": self.reason,
            "attempts": self.attempts,
            "retry_next_run": self.retry_next_run,
            "summary": _compact(self.summary),
        }


def _compact(summary: object, limit: int = 4000) -> object:
    text = json.dumps(summary, default=str, sort_keys=True)
    return summary if len(text) <= limit else text[:limit] + "…"


def measure(spec: StageSpec, before: Mapping[str, int], *, lake: Lake) -> tuple[dict[str, int], int, int]:
    """Versions after a stage, rows its inputs held before it, and rows it wrote."""
    after = features.table_versions(spec.watched, lake=lake)
    rows_in = sum(row_count(t, version=before[t], lake=lake) for t in spec.reads if t in before)
    rows_out = sum(_rows_written(t, before.get(t), after.get(t), lake) for t in spec.writes)
    return after, rows_in, rows_out


def _stage_run(stage: StageRecord, flow_run_id: str | None) -> StageRun:
    return StageRun(
        stage=stage.name,
        fingerprint=stage.fingerprint,
        status=stage.status,
        flow_run_id=flow_run_id,
        config_hash=stage.fingerprint,
        input_versions=stage.input_versions,
        output_versions=stage.output_versions,
        counts=stage.counts(),
        started_at=stage.started_at,
        duration_s=stage.duration_s,
    )


def record(stages: StageRecord | list[StageRecord], *, lake: Lake, flow_run_id: str | None) -> list[str]:
    """Write ``pipeline_runs`` rows for stage runs, in one commit; returns their run ids."""
    batch = stages if isinstance(stages, list) else [stages]
    return record_runs([_stage_run(s, flow_run_id) for s in batch], lake=lake)
