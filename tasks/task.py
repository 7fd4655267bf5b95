"""The Prefect face every stage shares: progress artifacts, the summary artifact, shard tasks on a task runner.

This is, with the stages' own ``task.py`` files, the only place in ``tasks/`` that imports Prefect.

Where the shard tasks run: the flow's default task runner (threads in this process), or Dask
(``task_runner="dask"``): a temporary ``distributed.LocalCluster`` of ``dask_workers`` processes on loopback
when no address is given (tests, one big machine), or the scheduler at ``dask_address`` (``tcp://host:8786``:
GPU workers in production). The stage that calls ``submit_jobs`` stays the only writer of its tables:
workers compute, the caller commits each result as it arrives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed

from tasks.progress import Progress
from tasks.summary import StageSummary


def publish(summary: StageSummary, *, key: str, description: str) -> None:
    """Log a summary's notes and publish its markdown as the stage's Prefect artifact."""
    from prefect.artifacts import create_markdown_artifact

    logger = get_run_logger()
    for line in summary.notes():
        logger.info(line)
    create_markdown_artifact(summary.to_markdown(), key=key, description=description)


def prefect_progress(key: str, description: str) -> Progress:
    """A ``progress(done, total)`` callback driving a Prefect progress artifact and a rich progress bar.

    Call it inside a Prefect task or flow run; the bar stops itself once ``done >= total``.
    """
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from rich.progress import Progress as Bar

    artifact_id = create_progress_artifact(0.0, key=key, description=description)
    bar = Bar(transient=True)
    task_id = bar.add_task(key, total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task_id, completed=done, total=total)
        update_progress_artifact(artifact_id, progress=100.0 * done / max(total, 1))
        if done >= total:
            bar.stop()

    return update


def _api_url() -> str | None:
    """The Prefect API this process talks to, so that local Dask workers report to the same one.

    With a configured server (or the test harness) the URL is in the settings, which prefect-dask hands to
    every task; in ephemeral mode it is the temporary server of this process, which workers would not find
    (each would start a server of its own), so it is passed to them in their environment.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    configured = PREFECT_API_URL.value()
    if configured:
        return str(configured)
    return str(get_client(sync_client=True).api_url)


def dask_task_runner(address: str | None = None, workers: int = 2) -> Any:
    """A ``DaskTaskRunner``: connected to ``address``, else a temporary ``LocalCluster`` of ``workers`` processes.

    Local workers are single-threaded processes on 127.0.0.1, each with ``cpu_count // workers`` torch / BLAS
    threads (so that the workers together use the machine's cores once), and the Prefect API of this process.
    Call inside a flow run (the ephemeral API is running then).
    """
    from prefect_dask import DaskTaskRunner

    if workers < 1:
        raise ValueError("workers must be at least 1")
    if address:
        return DaskTaskRunner(address=address)
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    api = _api_url()
    if api:
        env["PREFECT_API_URL"] = api
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
            "env": env,
        },
    )


J = TypeVar("J")
R = TypeVar("R")


def submit_jobs(
    task: Any, jobs: Iterable[J], parameters: Callable[[J], dict[str, Any]], *, max_in_flight: int
) -> Iterator[R]:
    """Submit one task run per job, at most ``max_in_flight`` at a time; yield results in completion order.

    Must run inside a flow run (``task.submit`` goes to that flow's task runner). A job whose task fails (after
    the task's own retries) does not stop the others: their results are still yielded, so the caller commits
    them, and the first failure is raised once every submitted job has finished.

    Args:
        task: a Prefect ``Task``.
        jobs: the jobs, consumed lazily (only ``max_in_flight`` are submitted ahead of the results).
        parameters: the task's keyword arguments for one job.
        max_in_flight: how many task runs may be pending at once (bounds memory on the workers and here).

    Yields:
        Each task's return value, as the task runs finish.
    """
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    source = iter(jobs)
    pending: set[PrefectFuture[Any]] = set()
    failures: list[BaseException] = []

    def fill() -> None:
        while len(pending) < max_in_flight:
            job = next(source, _END)
            if job is _END:
                return
            pending.add(task.submit(**parameters(job)))  # type: ignore[arg-type]

    fill()
    while pending:
        future = next(as_completed(list(pending)))
        pending.discard(future)
        try:
            result = future.result()
        except Exception as exc:  # keep going: the other shards are still committed
            failures.append(exc)
        else:
            yield result
        fill()
    if failures:
        raise failures[0]


_END: Any = object()
