"""The Prefect task under a test-harness server: writes the report and publishes the ``run-report`` artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tasks.report.build import MAP_PNG


@pytest.mark.usefixtures("prefect_harness")
def test_task_publishes_markdown_artifact(full_lake: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    from prefect import flow, get_client

    from tasks.report.task import ARTIFACT_KEY, report_task

    lake, artifacts, _ = full_lake

    @flow(name="report-test")
    def report_flow() -> str:
        return report_task(str(lake), str(tmp_path / "out"), str(artifacts))

    state = report_flow(return_state=True)
    assert state.is_completed()
    assert Path(state.result()) == tmp_path / "out" / "report.md"
    assert (tmp_path / "out" / MAP_PNG).is_file()

    async def published() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts()
            return [
                str(a.data) for a in found if a.key == ARTIFACT_KEY and a.flow_run_id == state.state_details.flow_run_id
            ]

    [markdown] = asyncio.run(published())
    assert "## Pipeline stages" in markdown and "| graphs:text_knn | ok |" in markdown
    assert str((tmp_path / "out").resolve()) in markdown
