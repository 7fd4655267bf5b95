"""The embedding flow: CLIP image and text vectors and sentence vectors for every item that lacks them."""

from __future__ import annotations

from prefect import flow

from flows.runners import TaskRunnerKind, check_task_runner, dask_task_runner
from tasks.embed.config import EmbedConfig
from tasks.embed.task import embed_sharded, embed_task


@flow(name="embed-sharded", log_prints=True)
def embed_sharded_flow(lake: str | None, config: EmbedConfig, max_in_flight: int = 8) -> dict[str, object]:
    """Subflow on the scale-out task runner: every shard is an ``embed-shard`` task; this process commits."""
    return embed_sharded(lake, config, max_in_flight=max_in_flight, runner_name="dask")


@flow(name="embed", log_prints=True)
def embed_flow(
    lake: str | None = None,
    modalities: list[str] | None = None,
    clip_model: str | None = None,
    text_model: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    shard_size: int | None = None,
    task_runner: TaskRunnerKind = "default",
    dask_address: str | None = None,
    dask_workers: int = 2,
) -> dict[str, object]:
    """Embed items (image, clip_text, text); parameters left None keep ``EmbedConfig``'s defaults.

    ``task_runner="dask"`` encodes the shards on Dask workers (``dask_address``, else a local cluster of
    ``dask_workers`` processes; see ``flows.runners``); the default runs the stage in this process.
    """
    check_task_runner(task_runner, dask_address, dask_workers)
    overrides: dict[str, object] = {
        "modalities": tuple(modalities) if modalities else None,
        "clip_model": clip_model,
        "text_model": text_model,
        "batch_size": batch_size,
        "device": device,
        "shard_size": shard_size,
    }
    config = EmbedConfig(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    if task_runner == "dask":
        runner = dask_task_runner(dask_address, dask_workers)
        return embed_sharded_flow.with_options(task_runner=runner)(lake, config, max_in_flight=2 * dask_workers)
    return embed_task(lake, config)
