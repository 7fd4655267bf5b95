"""Prefect face of the run report: the run's markdown artifact, and the report with its plots when a stage
did something."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from tasks.report.stage import run_markdown
from tasks.settings import StageContext
from tasks.stages import StageRecord

ARTIFACT_KEY = "nightly-run"


MAX_FIGURE_BYTES = 400_000  # a figure larger than this is linked from the report, not embedded in the artifact


def _figures(folder: Path) -> str:
    """The report's plots as markdown images with data URIs, so the Prefect UI shows them in the artifact."""
    out = []
    for png in sorted(folder.glob("*.png")):
        data = png.read_bytes()
        if len(data) <= MAX_FIGURE_BYTES:
            out.append(f"\n![{png.stem}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})\n")
    return "".join(out)


def publish_report(context: StageContext, records: Sequence[StageRecord], out_dir: Path) -> str | None:
    """Publish the run's markdown artifact (stages, quarantine, model against production) and, when a stage
    did something, write the run report with its plots into ``out_dir``; returns the report's path.

    The report never fails a run whose stages succeeded: an error is logged and said in the artifact.
    """
    markdown = run_markdown(records, lake=context.lake, artifacts_root=context.artifacts_root)
    path: Path | None = None
    if any(r.status != "skipped" for r in records):
        from tasks.report.build import build_report  # matplotlib: only when there is something to plot

        try:
            path = build_report(
                context.lake, out_dir, artifacts_root=context.artifacts_root, flow_run_id=context.run_id
            )
            markdown += (
                f"\n## Run report\n\n`{path}` and `{path.with_suffix('.html')}` (embedding maps, graph "
                "degree histograms, Recall@k against baselines).\n" + _figures(path.parent)
            )
        except Exception as exc:
            get_run_logger().warning("run report failed: %s: %s", type(exc).__name__, exc)
            markdown += f"\n## Run report\n\nNot written: {type(exc).__name__}: {exc}\n"
    else:
        markdown += "\n## Run report\n\nNothing ran, so no new report: the last one is still current.\n"
    create_markdown_artifact(markdown, key=ARTIFACT_KEY, description="nightly run: stages, quarantine, model")
    return None if path is None else str(path)
