"""What every ``mmcrs`` command shares: the ``--lake`` option, consoles, and the exit codes.

Exit codes: 0 ok; 1 the job ran and its answer is "no" (a candidate worse than production, a promotion
refused, a stage failed); 2 unusable input or an error; 3 the lake is busy with another pipeline run.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

EXIT_OK, EXIT_WORSE, EXIT_ERROR, EXIT_BUSY = 0, 1, 2, 3

console = Console()
err = Console(stderr=True)

LakeOpt = Annotated[
    str | None,
    typer.Option("--lake", help="Lake root (folder or URI); default MMCRS_LAKE, then mmcrs.toml, then ./lake."),
]


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print ``message`` as an error and return the ``typer.Exit`` to raise."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=code)
