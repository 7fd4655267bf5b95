"""The ingest's ``mmcrs.dialogues.ingested`` event: only when new dialogues landed, only from a run that does
not run the stages after ingest itself, on its own lake's resource."""

from __future__ import annotations

from pathlib import Path

import pytest

import features
import tasks.ingest.task as ingest_task
from tasks.ingest.stage import IngestStageSummary
from tasks.settings import StageContext


def _summary(written: int) -> IngestStageSummary:
    return IngestStageSummary(inputs={"dialogues": {"written": written, "updated": 0, "source_file": "d.jsonl"}})


def test_the_event_is_emitted_only_by_an_ingest_only_run_with_new_dialogues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emitted: list[dict] = []
    monkeypatch.setattr(ingest_task, "emit_event", lambda **kwargs: emitted.append(kwargs))
    lake = features.resolve_lake(tmp_path / "lake")
    alone, pipeline = StageContext(lake), StageContext(lake, runs_later_stages=True)

    assert not ingest_task.should_announce(_summary(0), alone)  # nothing new
    assert not ingest_task.should_announce(_summary(3), pipeline)  # the run retrains on them itself
    assert ingest_task.should_announce(_summary(3), alone)

    assert not ingest_task.emit_dialogues_landed(_summary(3), pipeline) and emitted == []
    assert ingest_task.emit_dialogues_landed(_summary(3), alone)
    (event,) = emitted
    assert event["event"] == ingest_task.DIALOGUES_EVENT
    assert event["resource"]["prefect.resource.id"] == f"mmcrs.lake.{lake.root}" == ingest_task.lake_resource_id(lake)
    assert event["payload"]["lake"] == lake.root and event["payload"]["new_dialogues"] == 3
