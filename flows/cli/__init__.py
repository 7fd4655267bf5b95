"""The ``mmcrs`` command line. Every command accepts ``--lake``; exit codes: 0 ok, 1 the answer is "no"
(a worse candidate, a failed stage), 2 unusable input or an error, 3 the lake is busy.

Prefect is configured for offline ephemeral runs (``flows.env``) before anything imports it, so the
flows run with no server to start and no network.
"""

from __future__ import annotations

import sys

from flows import env
from flows.cli import features, models, ops, stages  # noqa: F401  (each registers its commands)
from flows.cli.app import app


def main() -> None:
    """Console entry point."""
    env.configure()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
