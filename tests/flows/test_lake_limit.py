"""The lake-wide writer slot (a Prefect global concurrency limit per lake): created when missing, one holder
per lake at a time, different lakes independent, a busy lake refused (exit 3 in the CLI), stale slots freed
by a holder of the local lake lock."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectNotFound

from features.lock import LakeBusyError
from flows.lake_limit import lake_limit_name, lake_slot, lake_uri

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _held(lake: str) -> int:
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(lake_limit_name(lake)).active_slots
        except ObjectNotFound:
            return 0


def test_the_limit_name_is_stable_and_keyed_by_the_lake_uri(tmp_path: Path) -> None:
    name = lake_limit_name("s3://bucket/lake")
    assert name == lake_limit_name("s3://bucket/lake/") and name.startswith("mmcrs-lake-") and len(name) == 23
    assert lake_limit_name("s3://bucket/other") != name
    assert lake_uri(tmp_path / "lake") == f"file://{socket.gethostname()}{(tmp_path / 'lake').resolve()}"
    assert lake_limit_name(tmp_path / "lake") == lake_limit_name(str(tmp_path / "lake"))


def test_two_holders_on_one_lake_are_serialised_and_other_lakes_are_not() -> None:
    lake, other = "s3://bucket/serialised", "s3://bucket/independent"
    spans: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []

    def hold(key: str, lake_root: str, wait_s: float, seconds: float) -> None:
        try:
            with lake_slot(lake_root, wait_s=wait_s):
                start = time.monotonic()
                time.sleep(seconds)
                spans[key] = (start, time.monotonic())
        except BaseException as exc:  # reported below
            errors.append(exc)

    first = threading.Thread(target=hold, args=("first", lake, 0, 3.0))
    first.start()
    deadline = time.monotonic() + 30
    while _held(lake) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(LakeBusyError, match="lake is busy"), lake_slot(lake):
        pass  # refused at once while the first holds it
    with lake_slot(other):  # another lake: no wait
        pass
    second = threading.Thread(target=hold, args=("second", lake, 60.0, 0.1))
    second.start()
    first.join()
    second.join()
    assert not errors, errors
    assert spans["second"][0] >= spans["first"][1]  # the waiter started only after the holder left
    assert _held(lake) == 0


def test_a_stale_slot_is_freed_only_by_a_holder_of_the_local_lock() -> None:
    lake = "s3://bucket/stale"
    with lake_slot(lake):
        pass
    with get_client(sync_client=True) as client:  # a holder that died without releasing its slot
        client.update_global_concurrency_limit(lake_limit_name(lake), GlobalConcurrencyLimitUpdate(active_slots=1))
    with pytest.raises(LakeBusyError), lake_slot(lake, wait_s=0.5):
        pass
    with lake_slot(lake, free_stale=True) as name:
        assert name == lake_limit_name(lake) and _held(lake) == 1
    assert _held(lake) == 0


def test_a_run_on_a_local_lake_frees_the_slot_a_killed_run_left(tmp_path: Path) -> None:
    import features
    from flows.nightly import run_stages
    from tasks.settings import StageContext

    lake = features.resolve_lake(tmp_path / "lake")
    with lake_slot(lake):
        pass
    with get_client(sync_client=True) as client:  # a run killed with -9 on an ephemeral API: its slot stays held
        client.update_global_concurrency_limit(lake_limit_name(lake), GlobalConcurrencyLimitUpdate(active_slots=1))
    records, error = run_stages([], {}, StageContext(lake))  # it holds the flock, so the slot is stale
    assert records == [] and error is None and _held(lake.root) == 0
