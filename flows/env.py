"""Process environment for offline Prefect runs; call ``configure()`` before anything imports prefect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def configure(home: Path | None = None) -> None:
    """Set Prefect's offline defaults (ephemeral local server, no telemetry) unless already set.

    Args:
        home: ``PREFECT_HOME`` (default: ``./.prefect-home``), so runs never touch ``~/.prefect``.
    """
    os.environ.setdefault("PREFECT_HOME", str((home or Path.cwd() / ".prefect-home").resolve()))
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not sys.stderr.isatty():  # progress bars only on a terminal: no carriage-return noise in logs
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
