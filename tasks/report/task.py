"""Prefect face of the run report: builds it and publishes the markdown as the ``run-report`` artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from tasks.report.build import build_report

ARTIFACT_KEY = "run-report"


@task(name="run-report")
def report_task(
    lake: str | None = None,
    out_dir: str = "report",
    artifacts_root: str | None = None,
    flow_run_id: str | None = None,
) -> str:
    """Prefect task: write the run report into ``out_dir`` (see ``build_report``) and publish its markdown
    as a Prefect markdown artifact (key ``run-report``; images stay in the folder). Returns ``report.md``'s path."""
    from prefect.artifacts import create_markdown_artifact

    path = build_report(lake, out_dir, artifacts_root=artifacts_root, flow_run_id=flow_run_id)
    folder = Path(out_dir).resolve()
    markdown = path.read_text() + f"\n\nFigures and the self-contained HTML report: `{folder}`\n"
    create_markdown_artifact(markdown, key=ARTIFACT_KEY, description="run report (stages, quarantine, plots)")
    get_run_logger().info("run report written to %s", folder)
    return str(path)
