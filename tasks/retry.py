"""Which failures a stage retries: transient I/O only, never bad data."""

from __future__ import annotations

from typing import Any

TRANSIENT = (TimeoutError, ConnectionError, OSError)
PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, ValueError, KeyError, TypeError)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying (timeouts, connection resets, I/O hiccups, CUDA OOM)."""
    if isinstance(exc, PERMANENT):
        return False
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return True
    return isinstance(exc, TRANSIENT)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """A Prefect ``retry_condition_fn``: retry only when the task failed on a transient error."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)
