"""Where the stages' shard tasks run: the default in-process task runner, or Dask.

``task_runner="dask"`` runs the embedding shards and the summarization batches as Prefect tasks on a
``prefect_dask.DaskTaskRunner``: a temporary ``distributed.LocalCluster`` of ``dask_workers`` processes on
loopback when no address is given (tests, one big machine), or the scheduler at ``dask_address``
(``tcp://host:8786``: GPU workers in production). The default runner keeps everything in this process.
"""

from __future__ import annotations

import os
from typing import Any, Literal

TaskRunnerKind = Literal["default", "dask"]
TASK_RUNNERS: tuple[str, ...] = ("default", "dask")


def check_task_runner(kind: str, dask_address: str | None, dask_workers: int) -> None:
    """Raise ``ValueError`` for an unknown runner or options that do not fit it."""
    if kind not in TASK_RUNNERS:
        raise ValueError(f"unknown task runner {kind!r}: {' | '.join(TASK_RUNNERS)}")
    if dask_workers < 1:
        raise ValueError("dask_workers must be at least 1")
    if dask_address and kind != "dask":
        raise ValueError("dask_address needs task_runner='dask'")


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
