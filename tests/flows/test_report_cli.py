"""``mmcrs report``: writes the report folder, even for an empty lake (every input then said to be missing)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import features
from features.runs import StageRun, record_run
from flows.cli import app


def test_report_command_writes_the_report(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    record_run(StageRun(stage="ingest-dialogues", fingerprint="f", status="ok", counts={"read": 3}), lake=lake)
    assert features.table_version("pipeline_runs", lake=lake) == 0
    result = CliRunner().invoke(
        app, ["report", "--lake", str(lake), "--out", str(tmp_path / "r"), "--artifacts", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    assert "report written" in result.output
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "| ingest-dialogues | ok |" in markdown
    assert "_No model yet:" in markdown
    assert (tmp_path / "r" / "report.html").is_file()
