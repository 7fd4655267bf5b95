"""Dialogue ingest with hostile input: one bad record is one quarantine row, the rest lands; updates scale."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import features
import tasks.ingest.dialogues as ingest_module
from tasks.ingest.dialogues import ingest_dialogues


def _dialogue(conv: object, texts: list[str] | None = None) -> dict[str, object]:
    return {
        "conversationId": conv,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"9": "Heat (1995)"},
        "messages": [
            {"text": text, "senderWorkerId": 1 + i % 2, "messageId": i}
            for i, text in enumerate(texts or ["hi, seen @9?", "yes"])
        ],
    }


def _quarantine(lake: Path) -> dict[str, str]:
    rows = features.read("quarantine", lake=lake).collect().iter_rows(named=True)
    return {r["record_key"]: r["reason"] for r in rows}


POISON = {
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "5,000-digit id": '{"conversationId": ' + "7" * 5000 + ', "initiatorWorkerId": 1, "respondentWorkerId": 2, '
    '"messages": []}',
    "null id": json.dumps(_dialogue(None)),
    "object id": json.dumps(_dialogue({"a": 1})),
    "NaN id": json.dumps(_dialogue(float("nan"))),
    "bool id": json.dumps(_dialogue(True)),
    "list worker id": json.dumps({**_dialogue(5), "initiatorWorkerId": [1]}),
    "201-character id": json.dumps(_dialogue("x" * 201)),
    "invalid UTF-8": b'{"conversationId": "\xff"}'.decode("latin-1"),
}


@pytest.mark.parametrize("case", list(POISON))
def test_one_poison_line_is_one_quarantine_row_and_the_rest_lands(tmp_path: Path, case: str) -> None:
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    lines = [json.dumps(_dialogue(1)), POISON[case], json.dumps(_dialogue(2))]
    path.write_bytes("\n".join(lines).encode("latin-1" if case == "invalid UTF-8" else "utf-8") + b"\n")
    summary = ingest_dialogues(path, lake=lake)
    assert (summary.read, summary.written, summary.quarantined) == (3, 2, 1)
    landed = features.read("dialogues", lake=lake).collect()["dialogue_id"].sort().to_list()
    assert landed == ["redial:1", "redial:2"]  # never "redial:None", "redial:nan", "redial:{'a': 1}"
    (key, reason), *more = _quarantine(lake).items()
    assert not more and key.startswith("d.jsonl@") and key.endswith("#L2") and reason


def test_private_use_characters_in_text_cannot_break_the_mention_marks(tmp_path: Path) -> None:
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    texts = ["odd \ue000 char, seen @9?", "yes \ue0019\ue001 \ue000"]
    path.write_text(json.dumps(_dialogue(1, texts)) + "\n" + json.dumps(_dialogue(2)) + "\n")
    summary = ingest_dialogues(path, lake=lake)
    assert (summary.written, summary.quarantined) == (2, 0)
    turns = features.read("turns", lake=lake).filter(pl.col("dialogue_id") == "redial:1").sort("turn_idx").collect()
    assert turns["text"].to_list() == ["odd \ufffd char, seen @redial:9?", "yes \ufffd9\ufffd \ufffd"]


def test_inspired_rows_with_bad_ids_bytes_or_fields_are_quarantined_one_each(tmp_path: Path) -> None:
    path, lake = tmp_path / "d.tsv", tmp_path / "lake"
    rows = [
        b"dialog_id\tspeaker\ttext\tmovies",
        b"d1\tRECOMMENDER\thi \xee\x80\x80 there\t",
        b"d1\tSEEKER\tok\t",
        b"d2\tSEEKER\t\xff\xfe\t",
        b"\tSEEKER\tno id\t",
        b"d3\tSEEKER\ttoo\tmany\tfields",
        b"x" * 300 + b"\tSEEKER\tlong id\t",
        b"d4\tSEEKER\tfine\t",
    ]
    path.write_bytes(b"\n".join(rows) + b"\n")
    summary = ingest_dialogues(path, lake=lake)
    assert (summary.written, summary.quarantined) == (2, 4)
    assert sorted(k.split("#")[-1] for k in _quarantine(lake)) == ["L4", "L5", "L6", "L7"]
    text = features.read("turns", lake=lake).collect().sort("dialogue_id", "turn_idx")["text"][0]
    assert text == "hi \ufffd there"


def test_quarantine_keys_follow_content_not_file_names(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for day, dialogue_id in (("monday", 1), ("tuesday", 2)):
        folder = tmp_path / day
        folder.mkdir()
        path = folder / "new.jsonl"  # the same name on both days
        same_id = json.dumps(_dialogue(dialogue_id))
        path.write_text("\n".join([same_id, "{bad", same_id, same_id]) + "\n")
        summary = ingest_dialogues(path, lake=lake)
        assert (summary.written, summary.quarantined) == (1, 3)  # a bad line and two repeats of the same id
    stored = _quarantine(lake)
    assert len(stored) == 6  # nothing overwritten: three rows per file
    assert sum("duplicate dialogue id" in reason for reason in stored.values()) == 4
    again = ingest_dialogues(tmp_path / "tuesday" / "new.jsonl", lake=lake)
    assert (again.unchanged, again.quarantined) == (1, 3) and len(_quarantine(lake)) == 6


def test_counts_stay_true_when_another_run_landed_the_same_dialogues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    path.write_text("\n".join(json.dumps(_dialogue(i)) for i in range(4)) + "\n")
    ingest_dialogues(path, lake=lake)
    # a concurrent run checked the stored hashes before the other run committed: it sees nothing stored
    monkeypatch.setattr(ingest_module, "_existing_hashes", lambda ids, lake: {})
    summary = ingest_dialogues(path, lake=lake)
    assert summary.read == 4 and summary.written + summary.updated + summary.unchanged == 4


def test_an_update_removing_50000_turns_is_one_keyed_delete(tmp_path: Path) -> None:
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    texts = [f"message {i}" for i in range(50_002)]
    path.write_text(json.dumps(_dialogue(1, texts)) + "\n")
    ingest_dialogues(path, lake=lake)
    path.write_text(json.dumps(_dialogue(1, texts[:2])) + "\n")  # the dialogue cut short: 50,000 turns go
    summary = ingest_dialogues(path, lake=lake)
    assert (summary.updated, summary.turns_deleted) == (1, 50_000)
    turns = features.read("turns", lake=lake).collect()
    assert turns.sort("turn_idx")["text"].to_list() == ["message 0", "message 1"]


def test_a_lone_surrogate_is_one_quarantine_row_and_big_integer_ids_stay_integers(tmp_path: Path) -> None:
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    big = 123456789012345678901234567890  # beyond 64 bits: read as an integer id, never as a float
    lines = [json.dumps(_dialogue(1, ["hi \ud800", "yes"])), json.dumps(_dialogue(big)), json.dumps(_dialogue(2))]
    path.write_text("\n".join(lines) + "\n")
    summary = ingest_dialogues(path, lake=lake)
    assert (summary.read, summary.written, summary.quarantined) == (3, 2, 1)
    landed = features.read("dialogues", lake=lake).collect()["dialogue_id"].sort().to_list()
    assert landed == [f"redial:{big}", "redial:2"]
    (key, reason), *more = _quarantine(lake).items()
    assert not more and key.endswith("#L1") and "surrogate" in reason
