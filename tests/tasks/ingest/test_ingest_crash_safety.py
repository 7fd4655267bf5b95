"""A dialogue ingest killed between its commits loses nothing and duplicates nothing when re-run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import features
import tasks.ingest.dialogues as ingest_module


def _write(path: Path, n: int) -> None:
    lines = []
    for conv in range(n):
        lines.append(
            json.dumps(
                {
                    "conversationId": conv,
                    "initiatorWorkerId": 1,
                    "respondentWorkerId": 2,
                    "movieMentions": {"9": "Heat (1995)"},
                    "initiatorQuestions": {},
                    "respondentQuestions": {},
                    "messages": [
                        {"text": f"hello {conv}", "senderWorkerId": 1, "messageId": 1},
                        {"text": "try @9", "senderWorkerId": 2, "messageId": 2},
                    ],
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")


class Crash(RuntimeError):
    """The injected failure: the process 'dies' before a commit."""


@pytest.mark.parametrize("crash_before", ["turns", "dialogues"])
def test_rerun_after_crash_completes_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_before: str
) -> None:
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    _write(path, 5)
    real_upsert = features.upsert

    def failing_upsert(table: str, *args: object, **kwargs: object) -> features.WriteResult:
        if table == crash_before:
            raise Crash(f"killed before committing {table}")
        return real_upsert(table, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module.features, "upsert", failing_upsert)
    with pytest.raises(Crash):
        ingest_module.ingest_dialogues(path, lake=lake, batch_size=2)  # first batch may commit, then crash
    monkeypatch.setattr(ingest_module.features, "upsert", real_upsert)

    summary = ingest_module.ingest_dialogues(path, lake=lake, batch_size=2)
    assert summary.written + summary.unchanged == 5
    turns = features.read("turns", lake=lake).collect()
    assert turns.height == 10
    assert turns.select("dialogue_id", "turn_idx").is_duplicated().sum() == 0
    dialogues = features.read("dialogues", lake=lake).collect()
    assert sorted(dialogues["dialogue_id"]) == [f"redial:{i}" for i in range(5)]
    assert dialogues.filter(pl.col("n_turns") != 2).height == 0
    assert features.read("items", lake=lake).collect().height == 1
