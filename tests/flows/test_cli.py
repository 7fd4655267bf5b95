"""The ``mmcrs`` command line: exit codes, ingest counts, and the features commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import features
import flows.nightly  # noqa: F401  (import prefect now: its log handlers must bind the real stderr, not CliRunner's)
from flows.cli import app

runner = CliRunner()


@pytest.fixture()
def dialogue_file(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    record = {
        "conversationId": 7,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"5": "Heat (1995)"},
        "initiatorQuestions": {},
        "respondentQuestions": {},
        "messages": [
            {"text": "seen @5?", "senderWorkerId": 2, "messageId": 1},
            {"text": "yes", "senderWorkerId": 1, "messageId": 2},
        ],
    }
    path.write_text(json.dumps(record) + "\n{broken\n")
    return path


def test_missing_file_exits_2_with_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", "--dialogues", str(tmp_path / "nope.jsonl"), "--lake", str(tmp_path)])
    assert result.exit_code == 2
    assert "file not found" in result.output


def test_unknown_format_exits_2(dialogue_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["ingest", "--dialogues", str(dialogue_file), "--format", "xml", "--lake", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "unknown dialogue format" in result.output


def test_nothing_to_ingest_exits_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["ingest", "--lake", str(tmp_path)]).exit_code == 2


@pytest.mark.usefixtures("prefect_harness")
def test_ingest_prints_counts_and_features_commands_read_back(dialogue_file: Path, tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    result = runner.invoke(app, ["ingest", "--dialogues", str(dialogue_file), "--lake", lake])
    assert result.exit_code == 0, repr(result.exception)
    row = next(line for line in result.output.splitlines() if line.startswith("│ dialogues"))
    assert [c.strip() for c in row.strip("│").split("│")] == ["dialogues", "2", "1", "0", "0", "1"]
    assert "invalid JSON" in result.output

    tables = runner.invoke(app, ["features", "tables", "--lake", lake])
    assert tables.exit_code == 0 and "turns" in tables.output
    history = runner.invoke(app, ["features", "history", "turns", "--lake", lake])
    assert history.exit_code == 0 and "WRITE" in history.output and "ingest_" in history.output
    show = runner.invoke(app, ["features", "show", "turns", "--version", "0", "--lake", lake])
    assert show.exit_code == 0 and "@redial:5" in show.output
    out = tmp_path / "turns.parquet"
    pulled = runner.invoke(app, ["features", "pull", "turns", "--out", str(out), "--lake", lake])
    assert pulled.exit_code == 0 and out.is_file()
    assert features.read("turns", lake=lake).collect().height == 2
    bad = runner.invoke(app, ["features", "show", "turns", "--version", "9", "--lake", lake])
    assert bad.exit_code == 2 and "version 9 does not exist" in bad.output
    unknown = runner.invoke(app, ["features", "history", "nope", "--lake", lake])
    assert unknown.exit_code == 2 and "unknown table" in unknown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--modality", "audio"], "unknown modality"),
        (["--model", "ViT-B-32"], "KIND:TARGET"),
        (["--modality", "text", "--model", "random:x"], "needs a seed"),
    ],
)
def test_embed_refuses_bad_options_with_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["embed", *args, "--lake", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.usefixtures("prefect_harness")
def test_ingest_refuses_unusable_catalogs_with_one_line_and_says_when_there_are_no_rows(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    corrupt = tmp_path / "items.parquet"
    corrupt.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    result = runner.invoke(app, ["ingest", "--catalog", str(corrupt), "--lake", lake])
    assert result.exit_code == 2 and "not a readable Parquet file" in result.output
    assert "Traceback" not in result.output
    counts = tmp_path / "counts.csv"
    counts.write_text("movieId,nbMentions,title\n1,5,A\n")
    args = ["--column", "movieId=item_id", "--column", "nbMentions=item_id"]
    clash = runner.invoke(app, ["ingest", "--catalog", str(counts), *args, "--lake", lake])
    assert clash.exit_code == 2 and "would all become 'item_id'" in " ".join(clash.output.split())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    nothing = runner.invoke(app, ["ingest", "--catalog", str(empty), "--lake", lake])
    assert nothing.exit_code == 0, nothing.output
    assert "empty.csv has no rows" in " ".join(nothing.output.split())
