"""The CLI's one error boundary, and what a SIGTERM / SIGINT leaves behind (nothing).

Every command runs inside ``Boundary.invoke``: a user error (an ``InputError``, a lake error, a missing or
altered model artifact, a bad model spec, a missing input file) is one line on stderr and exit 2; anything
else is a bug, reported as one ``internal error: ...`` line and exit 1, with its traceback only under
``mmcrs --debug`` (or ``MMCRS_DEBUG=1``). Usage errors of the parser (an unknown option, a value out of
range) keep their own exit 2.

Example:
    >>> classify(InputError("--top must be at least 1"))
    (2, '--top must be at least 1')
    >>> classify(KeyError("text"))
    (1, "internal error: KeyError: 'text' (rerun with --debug for the traceback)")
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import typer
from typer.core import TyperGroup

DEBUG_ENV = "MMCRS_DEBUG"
DEBUG_KEY = "mmcrs.debug"
EXIT_INTERNAL, EXIT_USER = 1, 2


class InputError(ValueError):
    """An input a command cannot use (an option value, a file, a dialogue): one line on stderr, exit 2."""


def debug_requested(ctx: Any = None) -> bool:
    """True when ``--debug`` was given (recorded by the root callback) or ``MMCRS_DEBUG`` is set."""
    if os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    return bool(ctx is not None and ctx.meta.get(DEBUG_KEY))


def _user_error_types() -> tuple[type[BaseException], ...]:
    from features import LakeError

    types: list[type[BaseException]] = [InputError, LakeError]
    with contextlib.suppress(ImportError):  # training is importable wherever the CLI is; be safe in the handler
        from training.artifacts import ArtifactError
        from training.spec import ModelSpecError

        types += [ArtifactError, ModelSpecError]
    return tuple(types)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] + (" …" if len(lines) > 1 else "") if lines else ""


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line an exception becomes at the CLI's edge.

    Returns:
        ``(2, message)`` for a user error; ``(1, "internal error: TYPE: message (rerun with --debug ...)")``
        for anything else.
    """
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        if exc.strerror and exc.filename is not None:
            return EXIT_USER, f"{exc.strerror.lower()}: {exc.filename}"
        return EXIT_USER, _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, _user_error_types()):
        return EXIT_USER, _one_line(str(exc)) or type(exc).__name__
    detail = _one_line(str(exc))
    return EXIT_INTERNAL, (
        f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} (rerun with --debug for the traceback)"
    )


def report(exc: BaseException) -> int:
    """Print ``exc`` as its one line on stderr; returns the exit code."""
    from rich.console import Console
    from rich.markup import escape

    code, line = classify(exc)
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(line)}")
    return code


class Boundary(TyperGroup):
    """The root command group: runs a command and turns what it raises into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command; user errors exit 2, bugs exit 1 (re-raised as they are under ``--debug``)."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # exit codes and usage errors: the parser's
            raise
        except Exception as exc:
            if debug_requested(ctx):
                raise
            raise typer.Exit(code=report(exc)) from None


def _stop_prefect_servers() -> None:
    """Stop every ephemeral Prefect API server this process started (they would outlive it otherwise)."""
    module = sys.modules.get("prefect.server.api.server")
    if module is None:
        return
    for server in list(getattr(module.SubprocessASGIServer, "_instances", {}).values()):
        with contextlib.suppress(Exception):
            server.stop()


_received: list[int] = []


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Unwind first (a flow run records its crash through the API server while it still runs), stop the
    # server after: in ``cleanup_on_signal``'s exit.
    _received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def cleanup_on_signal() -> Iterator[None]:
    """While the block runs, a SIGTERM (exit 143) or SIGINT (exit 130) unwinds the command, then stops
    Prefect's ephemeral API server, so an interrupted command never leaves a server process behind."""
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if _received:
            _stop_prefect_servers()
