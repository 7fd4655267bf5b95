"""One writer per lake, wherever it runs: a Prefect global concurrency limit named after the lake.

The local ``flock`` (``features.lock``) serialises writers on one machine only; an object-store lake can be
written from several workers, CI runners and laptops at once. Every writing run (``flows.nightly.run_stages``:
ingest, crawl, every stage, ``ci retrain``) also takes the one slot of the global concurrency limit
``mmcrs-lake-<sha256(lake URI)[:12]>`` on the Prefect API it talks to; the limit is created (one slot) when
it is missing, so this works on a real server, in Prefect's ephemeral mode and under the test harness.

A slot is a lease that the holder renews while it runs. When a holder dies, a real ``prefect server`` frees
its slot once the lease expires (``LEASE_S``); an ephemeral API has no such service. So a run that holds the
local lock of a local lake first takes any slot still held on that lake as stale (no live writer can hold
it without that lock) and frees it; a local lake's URI names the host, so two machines' ``/data/lake`` are
two lakes.

Example:
    >>> lake_limit_name("s3://bucket/lake")
    'mmcrs-lake-5746bde05df1'
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from features import Lake, resolve_lake
from features.lock import LakeBusyError

log = logging.getLogger(__name__)

LIMIT_PREFIX = "mmcrs-lake-"
LEASE_S = 300.0


def lake_uri(lake: Lake | str | None) -> str:
    """The lake's URI as the limit keys it: the root of an object-store lake, ``file://<host><path>`` else."""
    resolved = resolve_lake(lake)
    return f"file://{socket.gethostname()}{resolved.root}" if resolved.is_local else resolved.root


def lake_limit_name(lake: Lake | str | None) -> str:
    """The global concurrency limit's name for a lake: ``mmcrs-lake-`` and 12 hex digits of the URI's SHA-256."""
    return LIMIT_PREFIX + hashlib.sha256(lake_uri(lake).encode()).hexdigest()[:12]


def ensure_lake_limit(name: str) -> None:
    """Create the one-slot global concurrency limit ``name`` when the API does not have it."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def free_stale_slots(name: str) -> int:
    """Set the limit's held slots to zero; returns how many were held. Only for a caller that knows no live
    writer holds one (see the module doc)."""
    with get_client(sync_client=True) as client:
        held = client.read_global_concurrency_limit_by_name(name).active_slots
        if held:
            log.warning("freeing %d stale slot(s) of %s (their holder is gone)", held, name)
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return held


def _busy(exc: BaseException) -> bool:
    cause = exc.__cause__
    locked = isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423
    return isinstance(exc, AcquireConcurrencySlotTimeoutError) or locked


@contextmanager
def lake_slot(lake: Lake | str | None, *, wait_s: float = 0.0, free_stale: bool = False) -> Iterator[str]:
    """Hold the lake's global concurrency slot for the ``with`` block.

    Args:
        lake: the lake.
        wait_s: how long to wait for another holder; 0 refuses at once.
        free_stale: free slots held before taking ours (the caller holds the local lake's lock).

    Yields:
        The limit's name.

    Raises:
        LakeBusyError: another run still holds the slot after ``wait_s``.
    """
    name = lake_limit_name(lake)
    ensure_lake_limit(name)
    if free_stale:
        free_stale_slots(name)
    started = time.monotonic()
    with ExitStack() as stack:
        try:
            stack.enter_context(
                concurrency(
                    name,
                    timeout_seconds=wait_s if wait_s > 0 else None,
                    max_retries=None if wait_s > 0 else 0,
                    lease_duration=LEASE_S,
                    strict=True,
                    raise_on_lease_renewal_failure=False,
                )
            )
        except (AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError) as exc:
            if not _busy(exc):
                raise
            holder = f"another run on {lake_uri(lake)}"
            raise LakeBusyError(f"concurrency limit {name}", holder, time.monotonic() - started) from None
        yield name
