"""Scale-out helpers shared by the stages: submit shard jobs as Prefect tasks, yield results as they finish.

The task runner decides where the tasks run: the flow's default runner (threads in this process) or a
``prefect_dask.DaskTaskRunner`` (a ``LocalCluster`` or any Dask scheduler address); see ``flows.runners``.
The stage that calls ``submit_jobs`` stays the only writer of its tables: workers compute, the caller
commits each result as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prefect.futures import PrefectFuture, as_completed

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
