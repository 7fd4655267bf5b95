"""The report's Prefect face under a test-harness server: writes the report, publishes the run artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tasks.report.build import MAP_PNG


@pytest.mark.usefixtures("prefect_harness")
def test_task_publishes_markdown_artifact(full_lake: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from prefect import flow, get_client

    import features
    from tasks.report.task import ARTIFACT_KEY, publish_report
    from tasks.settings import StageContext
    from tasks.stages import StageRecord

    lake, artifacts, _ = full_lake
    context = StageContext(features.resolve_lake(lake), None, str(artifacts))  # every recorded run
    ran = StageRecord("graphs", "ok", "f", datetime.now(UTC), 1.0, {}, {})

    @flow(name="report-test")
    def report_flow() -> str | None:
        return publish_report(context, [ran], tmp_path / "out")

    state = report_flow(return_state=True)
    assert state.is_completed()
    assert Path(state.result()) == tmp_path / "out" / "report.md"
    assert (tmp_path / "out" / MAP_PNG).is_file()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Pipeline stages" in report and "| graphs:text_knn | ok |" in report

    async def published() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts()
            return [
                str(a.data) for a in found if a.key == ARTIFACT_KEY and a.flow_run_id == state.state_details.flow_run_id
            ]

    [markdown] = asyncio.run(published())
    assert "| graphs | ok |" in markdown and str(tmp_path / "out" / "report.md") in markdown
    assert f"![{MAP_PNG.removesuffix('.png')}](data:image/png;base64," in markdown  # the plots show in the UI
