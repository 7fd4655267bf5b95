"""The stage registry: every stage of the pipeline declared once, and the bookkeeping of a stage run.

A ``StageSpec`` names what a stage is: its entry (a function of ``tasks/<stage>/task.py``, imported only
when the stage runs), its settings type (validated before anything runs), its summary type, the tables it
reads and writes, the labels its commits carry, whether it wants a GPU, and its retry policy. The nightly
runner, ``mmcrs run`` and the per-stage CLI commands, the skip rule and the run report all read the
registry; adding a stage is one ``StageSpec`` (plus its package), registered here or with ``register``.

A stage is skipped when a successful run of it had the same fingerprint (its settings, its input files
and the code version) and none of the tables it reads or writes changed since — except by commits of the
stages after it, which cannot change its result (the crawl writing ``items.poster_sha256`` does not make
the ingest stale). Every stage run, skipped or not, is one ``pipeline_runs`` row: versions in and out,
rows read and written, quarantined records by reason, duration and status.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

import features
from features import Lake
from features.read import history, row_count
from features.runs import StageRun, changed_tables, file_sha256, latest_run, record_runs, reusable_run
from tasks.crawl.config import CrawlSettings
from tasks.embed.config import EmbedSettings
from tasks.graphs.config import GraphsSettings
from tasks.ingest.config import IngestSettings
from tasks.settings import StageContext, StageSettings
from tasks.summarize.config import SummarizeSettings
from tasks.summary import StageSummary
from tasks.train.config import TrainSettings

TRANSIENT = (TimeoutError, ConnectionError, OSError)
PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, ValueError, KeyError, TypeError)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying (timeouts, connection resets, I/O hiccups, CUDA OOM), never bad data."""
    if isinstance(exc, PERMANENT):
        return False
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return True
    return isinstance(exc, TRANSIENT)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """A Prefect ``retry_condition_fn``: retry only when the task failed on a transient error."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


@dataclass(frozen=True)
class RetryPolicy:
    """How a stage is retried on transient errors: ``retries`` extra attempts, waiting ``delay_s``, then
    twice that, and so on (Prefect's own task retries)."""

    retries: int = 2
    delay_s: float = 10.0

    def delays(self) -> list[float]:
        """The wait before each retry."""
        return [self.delay_s * 2**i for i in range(self.retries)]


@dataclass(frozen=True)
class StageSpec:
    """One stage of the DAG.

    Attributes:
        name: stage name (``pipeline_runs.stage``, ``mmcrs run <name>``, the settings section).
        entry: ``module:function`` of its Prefect face (or the function itself), called as
            ``entry(settings, context)`` and returning its summary; imported only when the stage runs (a no-op
            night imports no torch).
        settings: its settings type (a ``StageSettings`` dataclass).
        reads: tables the stage reads.
        writes: tables the stage writes (``quarantine`` left out: every stage appends to it).
        labels: the ``stage`` values its commits and quarantine rows carry.
        gpu: True when the stage benefits from a GPU (tagged ``gpu`` for tag-based concurrency limits).
        retry: its retry policy on transient errors.
        reference_files: settings fields that may name a file the stage reads besides its inputs (a metadata
            table); their bytes are part of the fingerprint too.
        input_files: settings fields naming input files; their bytes are part of the fingerprint, and a
            stage with input files but none given is skipped ("no input files given").
        summary: ``module:Class`` of the summary its entry returns (or the class itself).
    """

    name: str
    entry: str | Callable[..., StageSummary]
    settings: type[StageSettings]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    labels: tuple[str, ...]
    summary: str | type[StageSummary] = "tasks.summary:StageSummary"
    gpu: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    input_files: tuple[str, ...] = ()
    reference_files: tuple[str, ...] = ()

    @property
    def watched(self) -> list[str]:
        """Tables whose change makes the stage stale."""
        return sorted(set(self.reads) | set(self.writes))

    def load_entry(self) -> Callable[..., StageSummary]:
        """The entry function (imports its module now)."""
        return self.entry if callable(self.entry) else _load(self.entry)

    def summary_type(self) -> type[StageSummary]:
        """The summary class (imports its module now)."""
        return self.summary if isinstance(self.summary, type) else _load(self.summary)

    def parse_settings(self, values: Mapping[str, object] | None) -> StageSettings:
        """Validated settings; raises ``ValueError`` naming an unknown key or a wrong type."""
        return self.settings.from_dict(values, stage=self.name)

    def missing_inputs(self, settings: StageSettings) -> bool:
        """True when the stage takes input files and none is given."""
        return bool(self.input_files) and not any(getattr(settings, f) for f in self.input_files)


def _load(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


_STAGES: list[StageSpec] = [
    StageSpec(
        "ingest",
        entry="tasks.ingest.task:run",
        settings=IngestSettings,
        reads=(),
        writes=("items", "dialogues", "turns"),
        labels=("ingest_catalog", "ingest_dialogues"),
        summary="tasks.ingest.stage:IngestStageSummary",
        input_files=("catalog", "dialogues"),
        reference_files=("enrich_with",),
    ),
    StageSpec(
        "crawl",
        entry="tasks.crawl.task:run",
        settings=CrawlSettings,
        reads=("items",),
        writes=("items", "poster_blobs", "poster_fetches"),
        labels=("crawl",),
        summary="tasks.crawl.stage:CrawlSummary",
    ),
    # Summaries come before embedding: the ``summary`` modality embeds them.
    StageSpec(
        "summarize",
        entry="tasks.summarize.task:run",
        settings=SummarizeSettings,
        reads=("items", "dialogues", "turns"),
        writes=("item_summaries", "preference_summaries"),
        labels=("summarize",),
        summary="tasks.summarize.task:SummarizeStageSummary",
        gpu=True,
    ),
    StageSpec(
        "embed",
        entry="tasks.embed.task:run",
        settings=EmbedSettings,
        reads=("items", "poster_blobs", "item_summaries"),
        writes=("item_embeddings",),
        labels=("embed",),
        summary="tasks.embed.stage:EmbedSummary",
        gpu=True,
    ),
    StageSpec(
        "graphs",
        entry="tasks.graphs.task:run",
        settings=GraphsSettings,
        reads=("item_embeddings", "turns"),
        writes=("item_graph_edges",),
        labels=("graphs",),
        summary="tasks.graphs.stage:GraphsSummary",
    ),
    StageSpec(
        "train",
        entry="tasks.train.task:run",
        settings=TrainSettings,
        reads=("turns", "items", "item_graph_edges", "item_embeddings", "preference_summaries"),
        writes=("model_registry",),
        labels=("train",),
        summary="tasks.train.task:TrainSummary",
        gpu=True,
    ),
]


def stages() -> tuple[StageSpec, ...]:
    """Every registered stage, in DAG order."""
    return tuple(_STAGES)


def stage_names() -> tuple[str, ...]:
    """The registered stages' names, in DAG order."""
    return tuple(s.name for s in _STAGES)


def stage_spec(name: str) -> StageSpec:
    """The spec of a stage; raises ``ValueError`` naming the known stages."""
    for spec in _STAGES:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown stage {name!r}; stages: {', '.join(stage_names())}")


@contextlib.contextmanager
def register(spec: StageSpec, *, after: str | None = None) -> Iterator[StageSpec]:
    """Add a stage to the registry (after ``after``, default last) for the duration of a ``with`` block."""
    if spec.name in stage_names():
        raise ValueError(f"stage {spec.name!r} is registered already")
    position = stage_names().index(after) + 1 if after else len(_STAGES)
    _STAGES.insert(position, spec)
    try:
        yield spec
    finally:
        _STAGES.remove(spec)


def parse_settings(given: Mapping[str, Mapping[str, object]] | None) -> dict[str, StageSettings]:
    """Every stage's validated settings from ``{stage: {key: value}}``; raises ``ValueError`` on an unknown
    stage, key or type, before anything runs."""
    given = dict(given or {})
    unknown = set(given) - set(stage_names())
    if unknown:
        raise ValueError(f"settings for unknown stages {sorted(unknown)}; stages: {', '.join(stage_names())}")
    for name, values in given.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"settings of stage {name} must be a table of parameters, got {values!r}")
    return {spec.name: spec.parse_settings(given.get(spec.name)) for spec in _STAGES}


def downstream_labels(name: str) -> set[str]:
    """Commit labels of every stage after ``name``: their commits never make ``name`` stale."""
    names = stage_names()
    return {label for spec in _STAGES[names.index(name) + 1 :] for label in spec.labels}


def stage_fingerprint(spec: StageSpec, settings: StageSettings) -> str:
    """Hash of a stage's given settings, the content of its input files and the code version."""
    files = {f: getattr(settings, f) for f in (*spec.input_files, *spec.reference_files)}
    hashed = {k: (file_sha256(Path(v)) if v and Path(v).is_file() else v) for k, v in files.items()}
    params = {k: v for k, v in settings.given().items() if k not in files}
    return features.config_hash(
        {"stage": spec.name, "params": params, "files": hashed, "code": features.code_version()}
    )


def reusable(name: str, fingerprint: str, *, lake: Lake) -> dict[str, object] | None:
    """The successful run this stage may reuse (nothing it depends on changed), or None when it must run."""
    spec = stage_spec(name)
    row = reusable_run(name, fingerprint, watched=spec.watched, ignore_stages=downstream_labels(name), lake=lake)
    if row is not None and json.loads(str(row["counts"] or "{}")).get("retry_next_run"):
        return None  # e.g. a crawl with transient failures: the next night tries them again
    return row


def skip_reason(
    spec: StageSpec, settings: StageSettings, context: StageContext, *, force: bool = False, fingerprint: str = ""
) -> str | None:
    """Why the stage would be skipped now (turned off, no input files, or nothing it depends on changed); None:
    it runs."""
    if not settings.enabled:
        return "turned off in the settings (enabled = false)"
    if spec.missing_inputs(settings):
        return "no input files given"
    row = None if force else reusable(spec.name, fingerprint or stage_fingerprint(spec, settings), lake=context.lake)
    return None if row is None else f"inputs and config unchanged since run {row['run_id']}"


def why_it_runs(spec: StageSpec, fingerprint: str, *, lake: Lake) -> str:
    """Why a stage that is not skipped would run: never ran, its settings / files / code changed, which of its
    tables changed since its last successful run, or transient failures to try again."""
    last = latest_run(spec.name, lake=lake)
    if last is None:
        return "never ran on this lake"
    if last["fingerprint"] != fingerprint:
        return f"settings, input files or code changed since run {last['run_id']}"
    moved = changed_tables(last, watched=spec.watched, ignore_stages=downstream_labels(spec.name), lake=lake)
    if moved:
        return f"changed since run {last['run_id']}: " + ", ".join(f"{t} v{a} -> v{b}" for t, (a, b) in moved.items())
    return f"run {last['run_id']} ended with failures worth another try"


def estimate(spec: StageSpec, *, lake: Lake) -> tuple[int, float | None]:
    """Rows the stage's input tables hold now, and seconds at the rate of its last successful run (None: no
    run to take a rate from). A rough guide: stages do only what is missing, often much less."""
    versions = features.table_versions(list(spec.reads), lake=lake)
    rows = sum(row_count(t, version=v, lake=lake) for t, v in versions.items())
    last = latest_run(spec.name, lake=lake)
    if last is None:
        return rows, None
    before = int(json.loads(str(last["counts"] or "{}")).get("rows_in") or 0)
    seconds = float(last["duration_s"] or 0.0)
    return rows, seconds * rows / before if before else seconds


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
    summary: StageSummary | None = None

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
            "summary": _compact(None if self.summary is None else self.summary.to_dict()),
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
