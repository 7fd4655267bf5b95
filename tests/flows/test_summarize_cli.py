"""``mmcrs summarize``: the flow through the command line, with a tiny random LM folder (wiring, not quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import features
import flows.nightly  # noqa: F401  (import prefect now: its log handlers must bind the real stderr)
from flows.cli import app
from tests.tasks.summarize.tiny_lm import build_tiny_lm

runner = CliRunner()


def test_bad_choice_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["summarize", "--what", "users", "--lake", str(tmp_path)])
    assert result.exit_code == 2 and "--what takes" in result.output


@pytest.mark.usefixtures("prefect_harness")
def test_summarize_command_runs_the_flow_and_rerun_generates_nothing(tmp_path: Path) -> None:
    lake, dialogues = str(tmp_path / "lake"), tmp_path / "d.jsonl"
    record = {
        "conversationId": 7,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"5": "Heat (1995)", "6": "Alien (1979)"},
        "initiatorQuestions": {},
        "respondentQuestions": {"5": {"liked": 1, "seen": 1, "suggested": 0}},
        "messages": [
            {"text": "i like @5", "senderWorkerId": 1, "messageId": 1},
            {"text": "then @6", "senderWorkerId": 2, "messageId": 2},
        ],
    }
    dialogues.write_text(json.dumps(record) + "\n")
    assert runner.invoke(app, ["ingest", "--dialogues", str(dialogues), "--lake", lake]).exit_code == 0
    model = str(build_tiny_lm(tmp_path / "tiny-lm"))
    args = ["summarize", "--model-dir", model, "--max-new-tokens", "4", "--limit", "1", "--lake", lake]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    rows = {
        cells[0]: cells
        for cells in ([c.strip() for c in line.strip("│").split("│")] for line in first.output.splitlines())
        if cells[0] in ("items", "preferences")
    }
    # what | candidates | cached | generated | written | quarantined | seconds
    assert rows["preferences"][1] == "1" and rows["items"][1] == "2" and rows["items"][5] == "2", first.output
    assert "preferences summarised with local:tiny-lm@" in first.output
    # random weights never finish in 4 tokens: every answer is retried once, then quarantined with its reason
    quarantine = features.read("quarantine", lake=lake).collect()
    assert set(quarantine["source"]) == {"summarize:item", "summarize:preference"}
    again = runner.invoke(app, args)  # nothing changed: the stage is skipped, nothing generated
    assert again.exit_code == 0 and "unchanged since run" in " ".join(again.output.split())
    assert features.read("quarantine", lake=lake).collect().height == quarantine.height
