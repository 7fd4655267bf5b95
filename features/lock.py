"""One pipeline writer per lake: an advisory lock file beside the tables.

Two nightly runs started at once must not interleave their stages. On a local lake the lock is an
``fcntl.flock`` on ``<lake>/_locks/<name>.lock``: the kernel releases it when the holder exits, even on
``kill -9``, so a crash never leaves a stale lock. Object stores have no such primitive; there the
deployment's concurrency limit (``prefect.yaml``) is the guard, Delta's optimistic commits keep each table
consistent, and ``lake_lock`` only logs that it cannot lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from features.errors import LakeError
from features.lake import Lake, resolve_lake

log = logging.getLogger(__name__)


class LakeBusyError(LakeError):
    """Another process holds the lake's pipeline lock and did not release it in time."""

    def __init__(self, path: str, holder: str, waited_s: float) -> None:
        super().__init__(f"lake is busy: {path} is held by {holder or 'another process'} (waited {waited_s:.0f} s)")
        self.path, self.holder, self.waited_s = path, holder, waited_s


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _open_lock_file(lake: Lake, path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        where = f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)
        raise LakeError(f"cannot write to the lake {lake.root}: {where}") from None


def check_writable(lake: Lake | str | None = None, *, name: str = "pipeline") -> None:
    """Raise ``LakeError`` now, before a run starts, when a local lake's lock file cannot be created or opened
    (a read-only folder, a file in the way); object-store lakes are not checked."""
    resolved = resolve_lake(lake)
    if resolved.is_local:
        os.close(_open_lock_file(resolved, Path(resolved.root) / "_locks" / f"{name}.lock"))


@contextmanager
def lake_lock(
    lake: Lake | str | None = None, *, name: str = "pipeline", wait_s: float = 0.0, poll_s: float = 0.5
) -> Iterator[bool]:
    """Hold the lake's ``name`` lock for the ``with`` block.

    Args:
        lake: lake root.
        name: lock name (one lock per kind of writer).
        wait_s: how long to wait for another holder; 0 refuses at once.
        poll_s: how often to retry while waiting.

    Yields:
        True when a lock is held; False on an object-store lake (nothing to lock; see the module doc).

    Raises:
        LakeBusyError: the lock is still held after ``wait_s``.
        LakeError: the lake folder cannot be written (read-only, not ours).
    """
    resolved = resolve_lake(lake)
    if not resolved.is_local:
        log.warning("lake %s is not a local folder: no lock; rely on the deployment concurrency limit", resolved.root)
        yield False
        return
    path = Path(resolved.root) / "_locks" / f"{name}.lock"
    fd = _open_lock_file(resolved, path)
    started = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= wait_s:
                    raise LakeBusyError(str(path), _holder(path), waited) from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": datetime.now(UTC).isoformat()}).encode())
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the flock
