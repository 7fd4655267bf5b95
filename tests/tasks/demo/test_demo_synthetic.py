"""Tests for tasks.demo.synthetic: ReDial-format dialogues derived from MovieLens ratings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from tasks.demo.catalog import load_movielens_items, movielens_file
from tasks.demo.synthetic import synthesize_dialogues
from tasks.ingest.titles import split_title_year, title_key

_MENTION = re.compile(r"@(\d+)")
_QUESTION_KEYS = {"suggested", "seen", "liked"}


@pytest.fixture(scope="module")
def dialogue_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_dialogues(out_path=tmp_path_factory.mktemp("synthetic") / "d.jsonl", n_dialogues=80)


@pytest.fixture(scope="module")
def dialogues(dialogue_file: Path) -> list[dict]:
    return [json.loads(line) for line in dialogue_file.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def ratings() -> dict[tuple[int, int], tuple[int, float]]:
    """(user, item) -> (rating, timestamp)."""
    frame = pl.read_csv(movielens_file("inter"), separator="\t", new_columns=["u", "i", "r", "t"])
    return {(u, i): (round(r), t) for u, i, r, t in frame.iter_rows()}


def _expected_liked(rating: int) -> int:
    return 1 if rating >= 4 else 0 if rating <= 2 else 2


def test_lines_are_redial_conversations(dialogues: list[dict]) -> None:
    assert len(dialogues) == 80
    ids = [dialogue["conversationId"] for dialogue in dialogues]
    assert len(set(ids)) == 80 and all(isinstance(i, int) and i >= 900_000 for i in ids)
    message_ids = [message["messageId"] for dialogue in dialogues for message in dialogue["messages"]]
    assert len(set(message_ids)) == len(message_ids)
    for dialogue in dialogues:
        assert dialogue["synthetic"] is True
        assert dialogue["initiatorWorkerId"] != dialogue["respondentWorkerId"]
        offsets = [message["timeOffset"] for message in dialogue["messages"]]
        assert offsets == sorted(offsets)
        for message in dialogue["messages"]:
            assert set(message) == {"timeOffset", "text", "senderWorkerId", "messageId"}
            assert message["senderWorkerId"] in (dialogue["initiatorWorkerId"], dialogue["respondentWorkerId"])
        for questions in (dialogue["initiatorQuestions"], dialogue["respondentQuestions"]):
            assert set(questions) == set(dialogue["movieMentions"])
            assert all(set(answer) == _QUESTION_KEYS for answer in questions.values())


def test_every_mention_is_defined(dialogues: list[dict]) -> None:
    for dialogue in dialogues:
        mentioned = {movie for message in dialogue["messages"] for movie in _MENTION.findall(message["text"])}
        assert mentioned == set(dialogue["movieMentions"])
        assert len(mentioned) == 5  # four rated movies and the suggestion


def test_mention_names_match_the_catalog(dialogues: list[dict]) -> None:
    items = load_movielens_items()
    catalog_keys = {
        item_id.removeprefix("ml:"): title_key(title, year)
        for item_id, title, year in items.select("item_id", "title", "year").iter_rows()
    }
    for dialogue in dialogues:
        for movie, name in dialogue["movieMentions"].items():
            assert title_key(*split_title_year(name)) == catalog_keys[movie]


def test_labels_follow_the_ratings(dialogues: list[dict], ratings: dict) -> None:
    for dialogue in dialogues:
        user = dialogue["initiatorWorkerId"]
        suggested = [movie for movie, answer in dialogue["initiatorQuestions"].items() if answer["suggested"]]
        assert len(suggested) == 1
        for movie, answer in dialogue["initiatorQuestions"].items():
            rating, _ = ratings[(user, int(movie))]
            assert answer["liked"] == _expected_liked(rating)
            assert answer["seen"] == (0 if answer["suggested"] else 1)
        target_rating, target_time = ratings[(user, int(suggested[0]))]
        assert target_rating >= 4
        seen_times = [ratings[(user, int(movie))][1] for movie in dialogue["movieMentions"] if movie != suggested[0]]
        assert max(seen_times) <= target_time


def test_seeker_tells_history_and_recommender_suggests(dialogues: list[dict]) -> None:
    dialogue = dialogues[0]
    seeker_texts = [m["text"] for m in dialogue["messages"] if m["senderWorkerId"] == dialogue["initiatorWorkerId"]]
    recommender_texts = [
        m["text"] for m in dialogue["messages"] if m["senderWorkerId"] != dialogue["initiatorWorkerId"]
    ]
    suggested = next(movie for movie, a in dialogue["initiatorQuestions"].items() if a["suggested"])
    assert any(f"@{suggested}" in text for text in recommender_texts)
    assert sum(bool(_MENTION.search(text)) for text in seeker_texts) >= 4


def test_same_seed_gives_the_same_file(tmp_path: Path, dialogue_file: Path) -> None:
    again = synthesize_dialogues(out_path=tmp_path / "again.jsonl", n_dialogues=80)
    assert again.read_bytes() == dialogue_file.read_bytes()


def test_different_seeds_differ(tmp_path: Path) -> None:
    first = synthesize_dialogues(out_path=tmp_path / "s1.jsonl", n_dialogues=20, seed=1)
    second = synthesize_dialogues(out_path=tmp_path / "s2.jsonl", n_dialogues=20, seed=2)
    assert first.read_bytes() != second.read_bytes()


def test_items_per_dialogue_sets_the_history_length(tmp_path: Path) -> None:
    path = synthesize_dialogues(out_path=tmp_path / "d.jsonl", n_dialogues=5, items_per_dialogue=2)
    for line in path.read_text(encoding="utf-8").splitlines():
        assert len(json.loads(line)["movieMentions"]) == 3


def test_non_positive_counts_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        synthesize_dialogues(out_path=tmp_path / "d.jsonl", n_dialogues=0)
