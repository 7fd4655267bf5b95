"""The ingest flow under a real (test-harness) Prefect server: tables, artifact, idempotent re-run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import features

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _dialogue(conv: int, texts: list[str]) -> dict[str, object]:
    return {
        "conversationId": conv,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"111": "Toy Story (1995)", "222": "Made Up Film (2031)"},
        "initiatorQuestions": {"111": {"suggested": 0, "seen": 1, "liked": 1}},
        "respondentQuestions": [],
        "messages": [
            {"timeOffset": i, "text": t, "senderWorkerId": 1 + i % 2, "messageId": conv * 100 + i}
            for i, t in enumerate(texts)
        ],
    }


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("item_id,title,year,text\nml:1,Toy Story,1995,a toy\nml:2,Heat,1995,a heist\n")
    dialogues = tmp_path / "d.jsonl"
    lines = [json.dumps(_dialogue(1, ["hi, I liked @111", "try @222", "ok"])), "{not json", ""]
    lines.append(json.dumps(_dialogue(2, ["hello", "", "@999 is great"])))
    dialogues.write_text("\n".join(lines) + "\n")
    return {"catalog": catalog, "dialogues": dialogues, "lake": tmp_path / "lake"}


def test_ingest_flow_writes_tables_and_artifact(inputs: dict[str, Path]) -> None:
    from datetime import UTC, datetime

    from prefect import get_client

    from flows.nightly import nightly_flow

    started = datetime.now(UTC)
    state = nightly_flow(
        stages=["ingest"],
        dialogues=str(inputs["dialogues"]),
        catalog=str(inputs["catalog"]),
        lake=str(inputs["lake"]),
        report=False,
        return_state=True,
    )
    assert state.is_completed()
    results = state.result().results["ingest"].inputs
    assert results["catalog"]["written"] == 2
    d = results["dialogues"]
    assert (d["read"], d["written"], d["quarantined"]) == (3, 2, 3)  # bad JSON line, empty msg, undefined @999
    turns = features.read("turns", lake=inputs["lake"]).sort("dialogue_id", "turn_idx").collect()
    assert turns["text"].to_list()[:2] == ["hi, I liked @ml:1", "try @redial:222"]
    assert turns.height == 4
    history = features.history("turns", lake=inputs["lake"])
    assert history["stage"][0] == "ingest_dialogues"
    assert history["flow_run_id"][0] == str(state.state_details.flow_run_id)

    async def artifacts() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts()
            return [a.description or "" for a in found if a.key == "ingest-summary" and a.created >= started]

    import asyncio

    assert "ingest counts" in asyncio.run(artifacts())


def test_ingest_flow_rerun_writes_no_version(inputs: dict[str, Path]) -> None:
    from flows.nightly import nightly_flow

    files = {"dialogues": str(inputs["dialogues"]), "catalog": str(inputs["catalog"]), "lake": str(inputs["lake"])}
    nightly_flow(stages=["ingest"], report=False, **files)
    before = features.tables(lake=inputs["lake"]).select("table", "version")
    skipped = nightly_flow(stages=["ingest"], report=False, **files)  # nothing changed: the stage skips
    assert skipped.status("ingest") == "skipped"
    assert features.tables(lake=inputs["lake"]).select("table", "version").equals(before)
    forced = nightly_flow(stages=["ingest"], report=False, force=True, **files)  # runs, and changes nothing
    again = forced.results["ingest"].inputs
    assert again["dialogues"]["written"] == 0 and again["dialogues"]["unchanged"] == 2
    assert again["catalog"]["unchanged"] == 2
    data = ["items", "dialogues", "turns", "quarantine"]
    versions_before = {t: v for t, v in before.iter_rows() if t in data}
    assert features.table_versions(data, lake=inputs["lake"]) == versions_before  # a forced re-ingest writes nothing
    quarantine = features.read("quarantine", lake=inputs["lake"]).collect()
    assert quarantine.height == 3 and quarantine.filter(pl.col("reason").str.contains("invalid JSON")).height == 1
