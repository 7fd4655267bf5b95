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


DEFAULT_MODEL = "mmcrs-graph-prompt"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="mmcrs: multimodal CRS feature pipeline.")
features_app = typer.Typer(no_args_is_help=True, help="Inspect and pull versioned lake tables.")
models_app = typer.Typer(no_args_is_help=True, help="Registered models: list, show, promote.")
ci_app = typer.Typer(no_args_is_help=True, help="Jobs for continuous integration.")
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.add_typer(ci_app, name="ci")
