"""Test session setup: offline Prefect in a private home, and a Prefect test harness for flow tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

# Before anything imports prefect: a private PREFECT_HOME, no telemetry, a generous server start timeout.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="mmcrs-prefect-home-")
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.pop("MMCRS_LAKE", None)
os.environ.pop("MMCRS_CONFIG", None)

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server (SQLite in a temp dir) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
