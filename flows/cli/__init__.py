"""The ``mmcrs`` command line. Every command accepts ``--lake``; exit codes: 0 ok, 1 the answer is "no"
(a worse candidate, a failed stage) or an internal error, 2 unusable input or a user error, 3 the lake is
busy. A user error is one line on stderr; ``mmcrs --debug ...`` (or ``MMCRS_DEBUG=1``) shows the traceback
of an internal error. A SIGTERM or SIGINT stops Prefect's ephemeral server before the process exits.

Prefect is configured for offline ephemeral runs (``flows.env``) before anything imports it, so the
flows run with no server to start and no network.
"""

from __future__ import annotations

import sys

from flows import env
from flows.cli import features, models, ops, stages  # noqa: F401  (each registers its commands)
from flows.cli.app import app
from flows.cli.errors import cleanup_on_signal, debug_requested, report


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the commands inside the error boundary, with signal cleanup."""
    env.configure()
    with cleanup_on_signal():
        try:
            app(args=argv, prog_name="mmcrs")
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:  # raised outside a command's boundary (e.g. while the app starts)
            if debug_requested() or "--debug" in (sys.argv[1:] if argv is None else argv):
                raise
            sys.exit(report(exc))


__all__ = ["app", "main"]
