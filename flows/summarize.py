"""The summarize flow (MLLM-MSR): item summaries, then recurrent preference summaries, by any LLM backend."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows.runners import TaskRunnerKind, check_task_runner, dask_task_runner
from tasks.summarize.backends.factory import BackendSpec
from tasks.summarize.stage import SummarizeConfig
from tasks.summarize.task import (
    dialogue_sample_task,
    summarize_items_task,
    summarize_preferences_task,
    summarize_sharded,
)


@flow(name="summarize-sharded", log_prints=True)
def summarize_sharded_flow(
    spec: BackendSpec,
    config: SummarizeConfig,
    lake: str | None = None,
    what: Literal["items", "preferences", "both"] = "both",
    limit: int | None = None,
    max_in_flight: int = 4,
) -> dict[str, object]:
    """Subflow on the scale-out task runner: every batch is a task run on a worker; this process commits."""
    return summarize_sharded(
        spec, config, lake, what=what, limit=limit, max_in_flight=max_in_flight, runner_name="dask"
    )


@flow(name="summarize", log_prints=True)
def summarize_flow(
    lake: str | None = None,
    what: Literal["items", "preferences", "both"] = "both",
    backend: Literal["local", "openai"] = "local",
    limit: int | None = None,
    model_dir: str | None = None,
    base_url: str = "http://127.0.0.1:8000/v1",
    model: str = "default",
    api_key_env: str = "OPENAI_API_KEY",
    api_key_block: str | None = None,
    accepts_images: bool = False,
    chunk_size: int = 3,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    task_runner: TaskRunnerKind = "default",
    dask_address: str | None = None,
    dask_workers: int = 2,
) -> dict[str, object]:
    """Summarise items and/or preferences. ``limit``: items (``what="items"``) or dialogues; with ``both``,
    the items mentioned in the chosen dialogues are summarised first so that their histories can use them.
    ``task_runner="dask"`` generates the batches on Dask workers (``dask_address``, else a local cluster of
    ``dask_workers`` processes, each loading the model once; see ``flows.runners``)."""
    check_task_runner(task_runner, dask_address, dask_workers)
    spec = BackendSpec(
        kind=backend,
        model_dir=model_dir,
        batch_size=batch_size,
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        api_key_block=api_key_block,
        accepts_images=accepts_images,
    )
    config = SummarizeConfig(chunk_size=chunk_size, max_new_tokens=max_new_tokens, batch=batch_size)
    if task_runner == "dask":
        runner = dask_task_runner(dask_address, dask_workers)
        return summarize_sharded_flow.with_options(task_runner=runner)(
            spec, config, lake, what, limit, max_in_flight=2 * dask_workers
        )
    result: dict[str, object] = {}
    if what == "items":
        result["items"] = summarize_items_task(spec, config, lake, None, limit)
        return result
    sample = dialogue_sample_task(lake, limit)
    if what == "both":
        result["items"] = summarize_items_task(spec, config, lake, sample["item_ids"], None)
    result["preferences"] = summarize_preferences_task(spec, config, lake, None, limit)  # the same sample
    return result
