"""Progress where the user looks: a terminal progress bar and a Prefect progress artifact, one callback."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]


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
