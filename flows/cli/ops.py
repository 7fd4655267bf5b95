"""``mmcrs run``, ``mmcrs ci retrain``, ``mmcrs vacuum``, ``mmcrs report``: the operators' commands.

Exit codes (``flows.cli.app``): 0 ok; 1 a stage failed / the candidate is worse than production; 2 an
error or unusable input; 3 the lake is busy with another pipeline run.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flows.cli.app import (
    EXIT_BUSY,
    EXIT_ERROR,
    EXIT_WORSE,
    ArtifactsOpt,
    LakeOpt,
    app,
    ci_app,
    console,
    fail,
    print_stages,
    run_pipeline,
    settings_app,
)

SettingsOpt = Annotated[
    Path | None,
    typer.Option("--settings", help='JSON or TOML file of per-stage flow parameters, e.g. {"embed": {...}}.'),
]


def load_settings(path: Path | None) -> dict[str, dict[str, Any]] | None:
    """Per-stage settings from a JSON or TOML file (None when no file is given)."""
    if path is None:
        return None
    if not path.is_file():
        raise fail(f"settings file not found: {path}")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise fail(f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise fail(f"{path}: expected a table of stages, each a table of parameters")
    return data


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="What to run: nightly (every stage) or one stage's name.")] = "nightly",
    dialogues: Annotated[Path | None, typer.Option(help="Dialogue file to ingest first.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Item catalog to ingest first.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Dialogue format: redial | inspired.")] = None,
    catalog_source: Annotated[str | None, typer.Option(help="Source name of the catalog.")] = None,
    force: Annotated[bool, typer.Option(help="Run stages even when nothing they depend on changed.")] = False,
    settings: SettingsOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait when another run holds the lake (else exit 3).")] = 0,
    artifacts: ArtifactsOpt = None,
    dry_run: Annotated[bool, typer.Option("--plan", help="Say which stages would run or skip, and stop.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Run the nightly DAG, or one stage of it, on the lake (skipping what has not changed)."""
    from tasks.stages import stage_names

    targets = ("nightly", *stage_names())
    if target not in targets:
        raise fail(f"unknown target {target!r}; choose one of {', '.join(targets)}")
    for path in (p for p in (dialogues, catalog) if p is not None):
        if not path.is_file():
            raise fail(f"file not found: {path}")
    ingest = {"dialogues": str(dialogues) if dialogues else None, "catalog": str(catalog) if catalog else None}
    ingest |= {"dialogue_format": fmt, "catalog_source": catalog_source}
    stages = None if target == "nightly" else [target]
    if dry_run or not force:  # nothing to do: said without starting Prefect at all
        steps = _plan(lake, stages, load_settings(settings), force, ingest)
        if dry_run or all(what.startswith("skip") for _, what in steps):
            _print_plan(steps, "plan (nothing runs)" if dry_run else "nothing to do: every stage is up to date")
            return
    result = run_pipeline(
        lake=lake,
        stages=stages,
        settings=load_settings(settings),
        force=force,
        artifacts=artifacts,
        wait=wait,
        **ingest,
    )
    print_stages(result)


def _plan(
    lake: str | None, stages: list[str] | None, settings: Any, force: bool, ingest: dict[str, str | None]
) -> list[tuple[str, str]]:
    import features
    from flows.plan import plan

    try:
        return plan(lake=lake, stages=stages, settings=settings, force=force, **ingest)
    except (ValueError, features.LakeError) as exc:
        raise fail(str(exc)) from None


def _print_plan(steps: list[tuple[str, str]], title: str) -> None:
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("would", overflow="fold")
    for name, what in steps:
        table.add_row(name, what)
    console.print(table)


@ci_app.command("retrain")
def ci_retrain(
    dialogues: Annotated[Path, typer.Option(help="New dialogues (ReDial JSONL / INSPIRED TSV).")],
    fmt: Annotated[str | None, typer.Option("--format", help="Dialogue format: redial | inspired.")] = None,
    settings: SettingsOpt = None,
    min_delta: Annotated[float, typer.Option(help="Improvement over production required to pass.")] = 0.0,
    promote: Annotated[bool, typer.Option(help="Promote the candidate when it passes.")] = False,
    artifacts: ArtifactsOpt = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the verdict as JSON here (on every outcome).")
    ] = None,
    stages: Annotated[str | None, typer.Option(help="Stages after ingest, comma-separated (default: all).")] = None,
    lake: LakeOpt = None,
) -> None:
    """Ingest new dialogues, retrain, evaluate, compare with production.

    Exit 0 when the candidate is at least as good as production (or there is none), 1 when it is worse,
    2 on any error, 3 when the lake is busy; ``--json`` is written in every case (``status``: pass | worse |
    error).
    """
    from features.lock import LakeBusyError
    from flows.ci import NoNewDialoguesError, ci_retrain_flow, verdict_document

    def error(message: str, code: int = EXIT_ERROR) -> typer.Exit:
        if json_out is not None:
            json_out.write_text(json.dumps(verdict_document("error", message, min_delta=min_delta), indent=2))
        return fail(message, code=code)

    if not dialogues.is_file():
        raise error(f"file not found: {dialogues}")
    try:
        stage_settings = load_settings(settings)
    except typer.Exit:
        raise error(f"unusable settings file: {settings}") from None
    try:
        result = ci_retrain_flow(
            dialogues=str(dialogues),
            lake=lake,
            dialogue_format=fmt,
            settings=stage_settings,
            min_delta=min_delta,
            promote_if_better=promote,
            artifacts_root=str(artifacts) if artifacts else None,
            stages=[s.strip() for s in stages.split(",")] if stages else None,
        )
    except LakeBusyError as exc:
        raise error(str(exc), code=EXIT_BUSY) from None
    except NoNewDialoguesError as exc:
        raise error(str(exc)) from None
    except Exception as exc:
        raise error(f"retraining failed: {type(exc).__name__}: {exc}") from None
    print_stages(result.run)
    _print_verdict(result.verdict)
    status = "pass" if result.verdict.passed else "worse"
    if json_out is not None:
        document = verdict_document(
            status, result.verdict.reason, min_delta=min_delta, verdict=result.verdict, facts=result.candidate
        )
        json_out.write_text(json.dumps(document, indent=2, default=str))
    if not result.verdict.passed:
        raise typer.Exit(code=EXIT_WORSE)


def _print_verdict(result: Any) -> None:
    verdict = result.to_dict()
    table = Table(
        title=f"candidate v{verdict['candidate']} against production "
        f"{'v' + str(verdict['production']) if verdict['production'] else '(none)'}"
    )
    for column in ("metric", "candidate", "production", "delta"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in verdict["metrics"]:
        cand, prod = row["candidate"], row["production"]
        delta = "" if cand is None or prod is None else f"{cand - prod:+.4f}"
        table.add_row(
            row["metric"], "—" if cand is None else f"{cand:.4f}", "—" if prod is None else f"{prod:.4f}", delta
        )
    console.print(table)
    console.print(
        f"{'PASS' if verdict['passed'] else 'WORSE'}: {verdict['reason']}"
        + (" (promoted to production)" if verdict["promoted"] else "")
    )


@app.command()
def vacuum(
    retain_hours: Annotated[
        float, typer.Option(min=0.0, help="Keep files removed less than this many hours ago (0 or more).")
    ] = 168.0,
    dry_run: Annotated[bool, typer.Option(help="List what would be deleted; delete nothing.")] = False,
    artifacts: Annotated[
        Path | None, typer.Option(help="Also read manifests under this artifacts root (besides <lake>/_artifacts).")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Delete table files no version in the retention window needs — never one a registered model needs."""
    from features.retention import vacuum_lake
    from training.registry import protected_versions

    try:
        protected = protected_versions(lake=lake, artifacts_root=str(artifacts) if artifacts else None)
        report = vacuum_lake(lake, retain_hours=retain_hours, protect=protected, dry_run=dry_run)
    except Exception as exc:
        raise fail(f"vacuum failed: {type(exc).__name__}: {exc}") from None
    table = Table(title="vacuum (dry run)" if dry_run else "vacuum")
    for column in ("table", "candidates", "kept for models", "deleted", "protected versions"):
        table.add_column(column, justify="left" if column in ("table", "protected versions") else "right")
    for name, r in report.items():
        table.add_row(
            name, str(r.candidates), str(r.kept), str(r.deleted), ", ".join(map(str, sorted(protected.get(name, ()))))
        )
    console.print(table)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Report folder: report.md, report.html and PNGs.")] = Path("report"),
    artifacts: ArtifactsOpt = None,
    flow_run_id: Annotated[str | None, typer.Option(help="Only the stage runs of this flow run.")] = None,
    lake: LakeOpt = None,
) -> None:
    """Write a run report: stage runs, quarantine, embedding maps, graph degrees, Recall@k vs baselines."""
    import features
    from tasks.report import build_report
    from tasks.report.config import ReportSettings

    resolved = features.Settings.resolve(lake=lake, artifacts_root=str(artifacts) if artifacts else None)
    artifacts_root = None if resolved.artifacts_root is None else str(resolved.artifacts_root)
    settings = ReportSettings(out_dir=str(out), artifacts_root=artifacts_root, flow_run_id=flow_run_id)
    path = build_report(
        resolved.lake, settings.out_dir, artifacts_root=settings.artifacts_root, flow_run_id=settings.flow_run_id
    )
    console.print(f"report written: {path} (and {path.with_suffix('.html')})")


@settings_app.command("show")
def settings_show(lake: LakeOpt = None) -> None:
    """Print the lake's stored stage settings (TOML)."""
    import features
    from features.lake_settings import SETTINGS_PATH, read_stage_settings, to_toml

    resolved = features.resolve_lake(lake)
    try:
        stored = read_stage_settings(resolved)
    except features.LakeError as exc:
        raise fail(str(exc)) from None
    console.print(f"# {resolved.path(*SETTINGS_PATH)}" + ("" if stored else " (none stored: defaults)"))
    console.print(to_toml(stored), markup=False, highlight=False)


@settings_app.command("save")
def settings_save(
    path: Annotated[Path, typer.Argument(help="JSON or TOML file of per-stage settings.")],
    lake: LakeOpt = None,
) -> None:
    """Validate a settings file and store it as the lake's stage settings (replacing what was stored)."""
    import features
    from features.lake_settings import write_stage_settings
    from tasks.stages import parse_settings

    given = load_settings(path) or {}
    try:
        parse_settings(given)
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"saved {write_stage_settings(features.resolve_lake(lake), given)}")
