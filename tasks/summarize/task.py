"""Prefect face of the summarize stage: progress, logs and sample artifacts around the cores, in this process
or with every batch as a task run on a scale-out task runner (``task_runner="dask"``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from features import Lake
from tasks.settings import StageContext
from tasks.summarize.backends import Backend
from tasks.summarize.backends.factory import BackendSpec, create_backend
from tasks.summarize.backends.openai import use_secret_loader
from tasks.summarize.config import SummarizeSettings
from tasks.summarize.items import ItemJob, generate_item_batch, summarize_items
from tasks.summarize.preferences import (
    PreferenceJob,
    advance_preference_batch,
    dialogue_sample,
    summarize_preferences,
)
from tasks.summarize.stage import (
    BackendIdentity,
    BackendInfo,
    BatchResult,
    BatchRunner,
    RunOptions,
    SummarizeConfig,
    SummarizeSummary,
)
from tasks.summary import StageSummary, reason_notes
from tasks.task import dask_task_runner, prefect_progress, submit_jobs


def _prefect_secret(name: str) -> str:
    from prefect.blocks.system import Secret

    return str(Secret.load(name).get())


use_secret_loader(_prefect_secret)  # api_key_block names a Prefect Secret block, here and on every worker
_COUNTS = ("candidates", "cached", "generated", "written", "quarantined", "elapsed_s")


@dataclass
class SummarizeStageSummary(StageSummary):
    """What one summarize run did: the item and / or preference summarizers' counts."""

    title = "summarize"
    parts: dict[str, dict[str, object]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, object]]:
        """One row per summarizer (items, preferences)."""
        return [{"what": what, **{c: s.get(c) for c in _COUNTS}} for what, s in self.parts.items()]

    def notes(self) -> list[str]:
        """Quarantine reasons, unused images, and whether the dialogues were a sample."""
        lines: list[str] = []
        for what, s in self.parts.items():
            lines.append(f"{what} summarised with {s.get('model_id')} ({s.get('runner')})")
            lines += reason_notes(f"summarize {what}", s.get("quarantine_reasons"))  # type: ignore[arg-type]
            if what == "items" and s.get("images") != "used":
                lines.append(f"item images: {s.get('images')}")
            if what == "preferences" and s.get("dialogues") != s.get("dialogues_total"):
                lines.append(
                    f"a sample: {s.get('dialogues')} of {s.get('dialogues_total')} dialogues "
                    "(--limit N sets how many; summarising all of them takes long on a CPU)"
                )
        return lines


def _publish(summary: SummarizeSummary, key: str) -> None:
    """Log the counts and publish a sample of the summaries as a markdown artifact."""
    get_run_logger().info(
        "summarize %s with %s: %d wanted, %d cached, %d generated, %d written, %d quarantined %s, images: %s (%.1f s)",
        summary.what,
        summary.model_id,
        summary.candidates,
        summary.cached,
        summary.generated,
        summary.written,
        summary.quarantined,
        summary.quarantine_reasons or "",
        summary.images,
        summary.elapsed_s,
    )
    if summary.workers:
        get_run_logger().info(
            "summarize %s ran on %d workers (%s), %d model loads",
            summary.what,
            len(summary.workers),
            ", ".join(summary.workers),
            summary.model_loads,
        )
    lines = [
        f"# {summary.what} summaries ({summary.model_id})",
        "",
        f"{summary.written} written, {summary.cached} cached, {summary.quarantined} quarantined.",
        "",
    ]
    if summary.what == "preferences" and summary.dialogues < summary.dialogues_total:
        lines += [f"A sample of {summary.dialogues} of {summary.dialogues_total} dialogues was summarised.", ""]
    for row in summary.sample:
        head = row.get("item_id") or f"{row.get('dialogue_id')} before turn {row.get('upto_turn')}"
        lines.append(f"- **{head}**: {row['summary']}")
    create_markdown_artifact("\n".join(lines), key=f"{key}-sample", description=f"sample of {summary.what} summaries")


# --- scale-out: batches as task runs on the flow's task runner (e.g. Dask); this process commits ---------


def _worker_backend(spec: BackendSpec) -> tuple[Backend, int]:
    """The backend of this worker process (``create_backend`` caches it: loaded once) and 1 if loaded now."""
    before = create_backend.cache_info().misses
    backend = create_backend(spec)
    return backend, create_backend.cache_info().misses - before


# Worker tasks have no retries of their own: a failed batch fails the stage, whose retry (the registry's
# policy) plans only what is still missing.
@task(name="summarize-backend-info", cache_policy=NO_CACHE)
def backend_info_task(spec: BackendSpec) -> BackendInfo:
    """Prefect task (on a worker): the backend's ``model_id``, so that the planning process loads no weights."""
    backend, _ = _worker_backend(spec)
    return BackendInfo(backend.model_id, backend.accepts_images)


@task(name="summarize-item-batch", cache_policy=NO_CACHE)
def item_batch_task(job: ItemJob, spec: BackendSpec, config: SummarizeConfig, lake: Lake) -> BatchResult:
    """Prefect task (on a worker): generate one batch of item summaries; writes nothing."""
    backend, loads = _worker_backend(spec)
    return generate_item_batch(job, backend=backend, config=config, lake=lake, model_loads=loads)


@task(name="summarize-preference-batch", cache_policy=NO_CACHE)
def preference_batch_task(job: PreferenceJob, spec: BackendSpec, config: SummarizeConfig) -> BatchResult:
    """Prefect task (on a worker): run one batch of dialogues' recurrent chains; writes nothing."""
    backend, loads = _worker_backend(spec)
    return advance_preference_batch(job, backend=backend, config=config, model_loads=loads)


@dataclass(frozen=True)
class _Runners:
    """How the batches run: in this process (no runners), or as task runs (``submit_jobs``)."""

    items: BatchRunner | None = None
    preferences: BatchRunner | None = None
    name: str = "in-process"

    def options(self, what: str, context: StageContext, label: str) -> RunOptions:
        """One summarizer's run options: its runner, the flow run, and a Prefect progress artifact."""
        return RunOptions(
            runner=self.items if what == "items" else self.preferences,
            runner_name=self.name,
            run_id=context.run_id,
            progress=prefect_progress(f"summarize-{what}-progress", label),
        )


def _summarize(
    settings: SummarizeSettings, context: StageContext, backend: BackendIdentity, runners: _Runners
) -> SummarizeStageSummary:
    """Items, then preferences: with ``both``, the items of the chosen dialogues first, so that their
    histories can use them; ``limit`` counts items (``what="items"``) or dialogues."""
    config, result = settings.summarize_config(), SummarizeStageSummary()

    def items(item_ids: Sequence[str] | None, limit: int | None) -> None:
        options = runners.options("items", context, "items summarised")
        summary = summarize_items(
            backend=backend, lake=context.lake, config=config, item_ids=item_ids, limit=limit, options=options
        )
        _publish(summary, "summarize-items")
        result.parts["items"] = summary.to_dict()

    if settings.what == "items":
        items(None, settings.limit)
        return result
    if settings.what == "both":
        items(dialogue_sample(lake=context.lake, limit=settings.limit)["item_ids"], None)
    options = runners.options("preferences", context, "dialogues summarised")
    summary = summarize_preferences(
        backend=backend,
        lake=context.lake,
        config=config,
        limit=settings.limit,  # the same sample
        options=options,
    )
    _publish(summary, "summarize-preferences")
    result.parts["preferences"] = summary.to_dict()
    return result


def summarize_sharded(
    settings: SummarizeSettings, context: StageContext, max_in_flight: int = 4
) -> SummarizeStageSummary:
    """Every batch is a task run on the flow's task runner (e.g. Dask workers); this process commits.

    The backend loads on the workers only (``create_backend`` caches it per process).
    """
    spec, config = settings.backend_spec(), settings.summarize_config()
    info = backend_info_task.submit(spec).result()

    def items_runner(jobs: Iterable[ItemJob]) -> Iterator[BatchResult]:
        return submit_jobs(
            item_batch_task,
            jobs,
            lambda job: {"job": job, "spec": spec, "config": config, "lake": context.lake},
            max_in_flight=max_in_flight,
        )

    def preferences_runner(jobs: Iterable[PreferenceJob]) -> Iterator[BatchResult]:
        return submit_jobs(
            preference_batch_task,
            jobs,
            lambda job: {"job": job, "spec": spec, "config": config},
            max_in_flight=max_in_flight,
        )

    return _summarize(settings, context, info, _Runners(items_runner, preferences_runner, "dask"))


def summarize_sharded_flow(
    settings: SummarizeSettings, context: StageContext, *, task_runner: Any, max_in_flight: int = 4
) -> SummarizeStageSummary:
    """``summarize_sharded`` as a subflow on ``task_runner``. The subflow takes no parameters (it closes over
    them), so neither the lake's storage options nor the endpoint settings land in Prefect's database."""

    def summarize_sharded_run() -> SummarizeStageSummary:
        return summarize_sharded(settings, context, max_in_flight=max_in_flight)

    sharded = flow(summarize_sharded_run, name="summarize-sharded", log_prints=True, task_runner=task_runner)
    return sharded()


CPU_SUMMARIES_PER_S = 1.4  # SmolLM2-135M, batched, on the 2-core development CPU (bench/RESULTS.md)
ANNOUNCE_ABOVE = 300  # dialogues: a run this large on a CPU says what it will cost before it starts


def cost_warning(settings: SummarizeSettings, lake: Lake) -> str | None:
    """The time a large local summarisation on the CPU will take, said before it starts (None: a small run, a
    GPU, or a served endpoint)."""
    if settings.backend != "local" or settings.what == "items" or torch_cuda_available():
        return None
    sample = dialogue_sample(lake=lake, limit=settings.limit)
    n = len(sample["dialogue_ids"])  # type: ignore[arg-type]
    if n <= ANNOUNCE_ABOVE:
        return None
    minutes = n / CPU_SUMMARIES_PER_S / 60
    return (
        f"summarising {n} dialogues on the CPU: at least {n} preference summaries at ~{CPU_SUMMARIES_PER_S}/s, "
        f"{minutes:.0f} minutes or more; set [summarize] limit = N (or --limit N) for a sample"
    )


def torch_cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def run(settings: SummarizeSettings, context: StageContext) -> SummarizeStageSummary:
    """LLM item summaries and recurrent user-preference summaries (MLLM-MSR)."""
    if (warning := cost_warning(settings, context.lake)) is not None:
        get_run_logger().warning(warning)
    if settings.task_runner == "dask":
        runner = dask_task_runner(settings.dask_address, settings.dask_workers)
        return summarize_sharded_flow(settings, context, task_runner=runner, max_in_flight=2 * settings.dask_workers)
    return _summarize(settings, context, create_backend(settings.backend_spec()), _Runners())
