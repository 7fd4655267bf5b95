"""What every ``mmcrs`` command shares: the ``--lake`` and ``--debug`` options, consoles, and the exit codes.

Exit codes: 0 ok; 1 the job ran and its answer is "no" (a candidate worse than production, a promotion
refused, a stage failed), or an internal error; 2 unusable input or an error; 3 the lake is busy with another
pipeline run. What an exception becomes at the edge is decided once, in ``flows.cli.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.cli.errors import DEBUG_ENV, DEBUG_KEY, Boundary, InputError

if TYPE_CHECKING:
    from flows.nightly import PipelineResult
    from tasks.summary import StageSummary

EXIT_OK, EXIT_WORSE, EXIT_ERROR, EXIT_BUSY = 0, 1, 2, 3
__all__ = ["EXIT_BUSY", "EXIT_ERROR", "EXIT_OK", "EXIT_WORSE", "InputError", "app", "fail"]

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long

LakeOpt = Annotated[
    str | None,
    typer.Option("--lake", help="Lake root (folder or URI); default MMCRS_LAKE, then mmcrs.toml, then ./lake."),
]


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print ``message`` as an error and return the ``typer.Exit`` to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=code)


ArtifactsOpt = Annotated[Path | None, typer.Option(help="Model artifacts root (default: <lake>/_artifacts).")]

app = typer.Typer(
    cls=Boundary, add_completion=False, no_args_is_help=True, help="mmcrs: multimodal CRS feature pipeline."
)
features_app = typer.Typer(no_args_is_help=True, help="Inspect and pull versioned lake tables.")
models_app = typer.Typer(no_args_is_help=True, help="Registered models: list, show, promote.")
ci_app = typer.Typer(no_args_is_help=True, help="Jobs for continuous integration.")
settings_app = typer.Typer(
    no_args_is_help=True, help="The stage settings stored in the lake (every run starts from them)."
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", envvar=DEBUG_ENV, help="Show the traceback of an internal error.")
    ] = False,
) -> None:
    ctx.meta[DEBUG_KEY] = debug


app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.add_typer(ci_app, name="ci")
app.add_typer(settings_app, name="settings")


def print_summary(summary: StageSummary) -> None:
    """A stage's summary as the terminal shows it: its rows as a table, then its notes."""
    from tasks.summary import cell

    rows = summary.rows()
    if rows:
        table = Table(title=summary.title)
        for i, column in enumerate(rows[0]):
            justify = "left" if i == 0 or isinstance(rows[0][column], str) else "right"
            table.add_column(column, justify=justify, overflow="fold", no_wrap=i == 0)
        for row in rows:
            table.add_row(*(cell(v) for v in row.values()))
        console.print(table)
    for line in summary.notes():
        console.print(f"  {line}")


def print_stages(result: PipelineResult) -> None:
    """The run's stage table, quarantine reasons per stage, and the report's path."""
    table = Table(title="pipeline run")
    for column in ("stage", "status", "rows in", "rows out", "quarantined", "note"):
        justify = "right" if column.startswith(("rows", "quar")) else "left"
        table.add_column(column, justify=justify, overflow="fold")
    stages = result.stages
    for name, s in stages.items():
        table.add_row(
            name, str(s["status"]), str(s["rows_in"]), str(s["rows_out"]), str(s["quarantined"]), str(s["reason"])
        )
    console.print(table)
    for name, s in stages.items():
        for reason, count in sorted((s.get("quarantined_by_reason") or {}).items()):  # type: ignore[union-attr]
            console.print(f"  quarantined ({name}): {reason}: {count}")
    if result.report:
        console.print(f"run report: {result.report}")


def run_pipeline(
    *,
    lake: str | None,
    stages: list[str] | None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    artifacts: Path | None = None,
    wait: float = 0.0,
    report: bool = True,
    **ingest: str | None,
) -> PipelineResult:
    """Run stages through the one runner (lake lock, skip rule, ``pipeline_runs``) with the CLI's error contract:
    bad settings or input exit 2, a busy lake exits 3, a failed stage exits 1."""
    from features import LakeError, resolve_lake
    from features.lock import LakeBusyError, check_writable
    from flows.nightly import nightly_flow
    from flows.plan import stage_settings

    try:
        stage_settings(settings, ingest, lake=resolve_lake(lake))
        check_writable(lake)
    except (ValueError, LakeError) as exc:
        raise fail(str(exc)) from None
    try:
        return nightly_flow(
            lake=lake,
            stages=stages,
            settings={k: dict(v) for k, v in (settings or {}).items()},
            force=force,
            artifacts_root=str(artifacts) if artifacts else None,
            lock_wait_s=wait,
            report=report,
            **ingest,
        )
    except LakeBusyError as exc:
        raise fail(str(exc), code=EXIT_BUSY) from None
    except (ValueError, LakeError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        raise fail(f"the run failed: {type(exc).__name__}: {exc}", code=EXIT_WORSE) from None


def run_stage_command(
    name: str, values: Mapping[str, Any], *, lake: str | None, force: bool = False, artifacts: Path | None = None
) -> StageSummary | None:
    """A per-stage command: run one stage like ``mmcrs run <name>``, print its summary (or why it was
    skipped); returns the summary, None when skipped."""
    given = {k: v for k, v in values.items() if v is not None}
    result = run_pipeline(
        lake=lake, stages=[name], settings={name: given}, force=force, artifacts=artifacts, report=False
    )
    record = next(r for r in result.records if r.name == name)
    if record.summary is None:
        console.print(f"{name}: {record.status} — {record.reason}")
        return None
    print_summary(record.summary)
    return record.summary
